// The qkv command against hostile input and faults (issue #12): Ctrl-C and SIGTERM during
// training (the qkv executable in a process of its own), checkpoints whose saved config
// names files (never opened: inotify watches them), data files that are FIFOs or devices,
// and the arguments and values whose diagnostics used to be wrong.
#include <doctest/doctest.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <limits>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "io/checkpoint.hpp"
#include "tests/run_util.hpp"
#include "train/run_lock.hpp"
#include "train/stop_signals.hpp"

using qkv::test::CliResult;
using qkv::test::fresh_dir;
using qkv::test::read_text;
using qkv::test::run_qkv;
using qkv::test::write_text;

namespace {

namespace fs = std::filesystem;

// Long enough that a signal sent once it has logged lands mid-run (a few seconds).
constexpr const char* kLongConfig = R"(name: long
seed: 8
task: {type: copy, symbols: 6, min_len: 2, max_len: 4}
model: {d_model: 16, heads: 2, layers: 1, d_ff: 32, dropout: 0.1}
optim: {type: adamw, lr: 0.01, weight_decay: 0.01, schedule: {type: cosine, warmup_steps: 100}}
train: {steps: 4000, batch_size: 8, eval_every: 500, eval_samples: 32, log_every: 10}
)";

constexpr const char* kFileConfig = R"(name: file
task: {type: file, train_file: train.tsv}
model: {d_model: 16, heads: 2, layers: 1, d_ff: 32}
train: {steps: 5, batch_size: 4, eval_every: 5, eval_samples: 3}
)";

// An error as everywhere (tests/run_util.hpp), and hostile input is not echoed at length.
void check_error(const CliResult& result, const std::string& text) {
  qkv::test::check_one_line_error(result, text);
  CHECK(result.err.size() < 2000);
}

// The qkv executable in a new process, its output and errors into files.
pid_t spawn_qkv(const std::vector<std::string>& args, const std::string& out, const std::string& err) {
  std::fflush(nullptr);
  const pid_t child = ::fork();
  if (child == 0) {
    const int out_fd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const int err_fd = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (out_fd < 0 || err_fd < 0 || ::dup2(out_fd, 1) < 0 || ::dup2(err_fd, 2) < 0) _exit(120);
    std::vector<char*> argv;
    argv.push_back(const_cast<char*>(QKV_EXECUTABLE));
    for (const std::string& arg : args) argv.push_back(const_cast<char*>(arg.c_str()));
    argv.push_back(nullptr);
    ::execv(QKV_EXECUTABLE, argv.data());
    _exit(121);
  }
  return child;
}

int wait_for(pid_t child) {
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  return status;
}

// Waits until the run in `dir` has written a metrics line: training has begun. The limit
// only keeps a broken build from hanging the suite.
void wait_until_training(const std::string& dir) {
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (std::chrono::steady_clock::now() < give_up) {
    std::error_code error;
    if (fs::file_size(dir + "/metrics.jsonl", error) > 0 && !error) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  FAIL("the run wrote no metrics line");
}

void check_same_tensors(const std::map<std::string, qkv::core::Tensor>& a,
                        const std::map<std::string, qkv::core::Tensor>& b) {
  REQUIRE(a.size() == b.size());
  for (const auto& [name, tensor] : a) {
    CAPTURE(name);
    REQUIRE(b.count(name) == 1);
    CHECK(b.at(name).to_vector() == tensor.to_vector());  // bit for bit
  }
}

// Counts opens of the watched paths while it lives (any process, any mode).
class OpenWatch {
 public:
  explicit OpenWatch(const std::vector<std::string>& paths)
      : fd_(inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) {
    REQUIRE(fd_ >= 0);
    for (const std::string& path : paths) REQUIRE(inotify_add_watch(fd_, path.c_str(), IN_OPEN) >= 0);
  }
  ~OpenWatch() { ::close(fd_); }
  std::size_t opens() const {
    std::size_t count = 0;
    alignas(inotify_event) char buffer[4096];
    for (ssize_t n; (n = ::read(fd_, buffer, sizeof buffer)) > 0;)
      for (char* p = buffer; p < buffer + n;) {
        const auto* event = reinterpret_cast<const inotify_event*>(p);
        count += (event->mask & IN_OPEN) != 0;
        p += sizeof(inotify_event) + event->len;
      }
    return count;
  }

 private:
  int fd_;
};

// A trained file-task run in `dir`; returns its checkpoint.
std::string train_file_task(const std::string& dir) {
  write_text(dir + "/train.tsv", "a b\tb a\nb c\tc b\nc a\ta c\n");
  const std::string config = write_text(dir + "/file.yaml", kFileConfig);
  const CliResult trained = run_qkv({"train", config, "--out", dir + "/run"});
  REQUIRE_MESSAGE(trained.code == 0, trained.err);
  return dir + "/run/last.safetensors";
}

// The checkpoint with its saved config's train_file pointed at `path`, as someone could
// hand it over (the checksums are right: it is a well-formed file).
std::string pointing_at(const std::string& checkpoint, const std::string& path,
                        const std::string& out, const std::string& task_state = "") {
  qkv::io::Checkpoint c = qkv::io::load_checkpoint(checkpoint);
  c.config_yaml = std::regex_replace(c.config_yaml, std::regex("train_file: .*"),
                                     "train_file: " + path);
  REQUIRE(c.config_yaml.find("train_file: " + path) != std::string::npos);
  if (!task_state.empty()) c.task_state = task_state;
  qkv::io::save_checkpoint(out, c);
  return out;
}

}  // namespace

TEST_CASE("signals: SIGINT stops training with a checkpoint, exit 130, and --resume is bit-identical") {
  const std::string dir = fresh_dir("cli_sigint");
  const std::string config = write_text(dir + "/long.yaml", kLongConfig);
  REQUIRE(run_qkv({"train", config, "--out", dir + "/straight"}).code == 0);

  const std::string run = dir + "/run";
  const pid_t child = spawn_qkv({"train", config, "--out", run}, dir + "/out.txt", dir + "/err.txt");
  wait_until_training(run);
  REQUIRE(::kill(child, SIGINT) == 0);
  const int status = wait_for(child);
  const std::string err = read_text(dir + "/err.txt");
  CAPTURE(err);
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 130);
  std::smatch stopped;
  REQUIRE(std::regex_search(err, stopped, std::regex("qkv: stopped by SIGINT after step (\\d+): saved " +
                                                     run + "/last.safetensors; continue with: qkv train " +
                                                     config + " --out " + run + " --resume\n$")));
  const std::size_t step = std::stoul(stopped[1]);
  CHECK(step < 4000);
  CHECK(qkv::io::load_checkpoint(run + "/last.safetensors").step == step);
  CHECK(read_text(dir + "/out.txt").find("# stopped by SIGINT after step " + std::to_string(step)) !=
        std::string::npos);
  // The steps since the last train line were reported, not lost.
  const auto lines = qkv::test::read_jsonl(run + "/metrics.jsonl");
  REQUIRE(!lines.empty());
  CHECK(lines.back()["step"] == step);

  const pid_t resumed = spawn_qkv({"train", config, "--out", run, "--resume"}, dir + "/out2.txt",
                                  dir + "/err2.txt");
  const int resumed_status = wait_for(resumed);
  CAPTURE(read_text(dir + "/err2.txt"));
  REQUIRE(WIFEXITED(resumed_status));
  REQUIRE(WEXITSTATUS(resumed_status) == 0);
  const qkv::io::Checkpoint a = qkv::io::load_checkpoint(dir + "/straight/last.safetensors");
  const qkv::io::Checkpoint b = qkv::io::load_checkpoint(run + "/last.safetensors");
  CHECK(b.step == 4000);
  check_same_tensors(a.weights, b.weights);
  check_same_tensors(a.optimizer.tensors, b.optimizer.tensors);
  CHECK(a.optimizer.scalars == b.optimizer.scalars);
  CHECK(a.rng_states == b.rng_states);
}

TEST_CASE("signals: SIGTERM stops training the same way, exit 143") {
  const std::string dir = fresh_dir("cli_sigterm");
  const std::string config = write_text(dir + "/long.yaml", kLongConfig);
  const std::string run = dir + "/run";
  const pid_t child = spawn_qkv({"train", config, "--out", run, "--set", "train.log_every=7"},
                                dir + "/out.txt", dir + "/err.txt");
  wait_until_training(run);
  REQUIRE(::kill(child, SIGTERM) == 0);
  const int status = wait_for(child);
  const std::string err = read_text(dir + "/err.txt");
  CAPTURE(err);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 143);
  CHECK(err.find("qkv: stopped by SIGTERM after step ") == 0);
  CHECK(err.find("--set train.log_every=7 --resume") != std::string::npos);
  CHECK_NOTHROW(qkv::io::load_checkpoint(run + "/last.safetensors"));
}

TEST_CASE("signals: a second signal ends the process at once; the last checkpoint still loads") {
  SUBCASE("the handler: the first is recorded, the second kills") {
    std::fflush(nullptr);
    const pid_t child = ::fork();
    if (child == 0) {
      qkv::train::StopSignals signals;
      ::raise(SIGINT);
      if (signals.pending() != SIGINT) _exit(3);
      ::raise(SIGINT);
      _exit(4);  // not reached: the second SIGINT takes its default action
    }
    const int status = wait_for(child);
    REQUIRE(WIFSIGNALED(status));
    CHECK(WTERMSIG(status) == SIGINT);
  }
  SUBCASE("two Ctrl-C during training") {
    const std::string dir = fresh_dir("cli_sigint_twice");
    const std::string config = write_text(dir + "/long.yaml", kLongConfig);
    const std::string run = dir + "/run";
    const pid_t child = spawn_qkv({"train", config, "--out", run, "--set", "train.eval_every=20",
                                   "--set", "train.checkpoint_every=20"},
                                  dir + "/out.txt", dir + "/err.txt");
    wait_until_training(run);
    REQUIRE(::kill(child, SIGINT) == 0);
    REQUIRE(::kill(child, SIGINT) == 0);
    const int status = wait_for(child);
    // Killed by the second, or (if the first had finished its save already) exit 130.
    CHECK(((WIFSIGNALED(status) && WTERMSIG(status) == SIGINT) ||
           (WIFEXITED(status) && WEXITSTATUS(status) == 130)));
    if (fs::exists(run + "/last.safetensors"))
      CHECK_NOTHROW(qkv::io::load_checkpoint(run + "/last.safetensors"));
  }
}

TEST_CASE("cli: a second training into a run folder names the pid that holds it") {
  const std::string dir = fresh_dir("cli_lock");
  const std::string config = write_text(dir + "/long.yaml", kLongConfig);
  fs::create_directories(dir + "/run");
  qkv::train::RunLock held(dir + "/run");
  check_error(run_qkv({"train", config, "--out", dir + "/run"}),
              "run folder '" + dir + "/run' is in use by another qkv (pid " +
                  std::to_string(::getpid()) + ", holding " + dir + "/run/.lock)");
  CHECK_FALSE(fs::exists(dir + "/run/config.yaml"));  // nothing was written
}

TEST_CASE("cli: a checkpoint never makes qkv open a file it names") {
  const std::string dir = fresh_dir("cli_no_foreign_paths");
  const std::string checkpoint = train_file_task(dir);
  const std::string secret = write_text(dir + "/secret", "root:$6$not-for-you:19000:0:99999:7:::\n");
  const std::string fifo = dir + "/fifo";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);

  SUBCASE("a secret file: eval uses the saved examples, and the file is never opened") {
    const std::string bad = pointing_at(checkpoint, secret, dir + "/secret.safetensors");
    OpenWatch watch({secret});
    const CliResult r = run_qkv({"eval", bad});
    REQUIRE_MESSAGE(r.code == 0, r.err);
    CHECK(nlohmann::json::parse(r.out)["samples"] == 3);
    CHECK(r.out.find("root") == std::string::npos);
    CHECK(watch.opens() == 0);
  }
  SUBCASE("a FIFO: no hang, not opened") {
    const std::string bad = pointing_at(checkpoint, fifo, dir + "/fifo.safetensors");
    OpenWatch watch({fifo});
    const CliResult r = run_qkv({"eval", bad, "--show"});
    REQUIRE_MESSAGE(r.code == 0, r.err);
    CHECK(watch.opens() == 0);
  }
  SUBCASE("a checkpoint without saved examples asks for --data, still opening nothing") {
    const std::string bad =
        pointing_at(checkpoint, secret, dir + "/old.safetensors",
                    "{format: 2, max_example_len: 4, max_answer_len: 2, vocabulary: [a, b, c]}");
    OpenWatch watch({secret});
    check_error(run_qkv({"eval", bad}), "evaluate a file of your own (qkv eval --data FILE)");
    CHECK(watch.opens() == 0);
    const std::string data = write_text(dir + "/mine.tsv", "a b\tb a\n");
    const CliResult r = run_qkv({"eval", bad, "--data", data});
    REQUIRE_MESSAGE(r.code == 0, r.err);
    CHECK(nlohmann::json::parse(r.out)["samples"] == 1);
  }
  SUBCASE("the data file given by the user must be a regular file") {
    check_error(run_qkv({"eval", checkpoint, "--data", fifo}),
                "data file '" + fifo + "' is not a regular file (a FIFO)");
    check_error(run_qkv({"eval", checkpoint, "--data", "/dev/zero"}),
                "data file '/dev/zero' is not a regular file (a character device)");
  }
}

TEST_CASE("cli: values that used to be accepted or misreported") {
  const std::string dir = fresh_dir("cli_diagnostics");
  const std::string config = write_text(
      dir + "/short.yaml",
      std::regex_replace(kLongConfig, std::regex("warmup_steps: 100"), "warmup_steps: 5"));
  const std::string run = dir + "/run";
  REQUIRE(run_qkv({"train", config, "--out", run, "--set", "train.steps=20"}).code == 0);
  const std::string checkpoint = run + "/last.safetensors";
  const auto cli_error = [](const CliResult& r, const std::string& text) {
    CAPTURE(r.err);
    CHECK(r.code != 0);
    CHECK(r.err.find(text) != std::string::npos);
    CHECK(r.err.size() < 300);
  };
  SUBCASE("--samples 0 (printed DBL_MAX in 386 characters)") {
    cli_error(run_qkv({"eval", checkpoint, "--samples", "0"}), "Value 0 not in range 1 to 1000000");
    cli_error(run_qkv({"eval", checkpoint, "--samples", "2000000"}), "not in range 1 to 1000000");
  }
  SUBCASE("--seed -1 (read as 2^64 - 1)") {
    cli_error(run_qkv({"eval", checkpoint, "--seed", "-1"}),
              "expected a seed from 0 to 18446744073709551615, found -1");
    CHECK(run_qkv({"eval", checkpoint, "--seed", "18446744073709551615"}).code == 0);
    cli_error(run_qkv({"inspect", checkpoint, "--sample", "2", "--seed", "-1"}),
              "expected a seed from 0 to 18446744073709551615, found -1");
    cli_error(run_qkv({"eval", checkpoint, "--seed", "18446744073709551616"}), "found 1844");
  }
  SUBCASE("inspect and report --sample 0 or past the limit") {
    cli_error(run_qkv({"inspect", checkpoint, "--sample", "0"}), "not in range 1 to 1000000");
    cli_error(run_qkv({"report", run, "--sample", "2000000"}), "not in range 1 to 1000000");
  }
  SUBCASE("--stop-at nan") {
    cli_error(run_qkv({"train", config, "--out", dir + "/other", "--stop-at", "nan"}),
              "expected an accuracy in [0, 1], found nan");
    cli_error(run_qkv({"train", config, "--out", dir + "/other", "--stop-at", "1.5"}),
              "expected an accuracy in [0, 1], found 1.5");
  }
  SUBCASE("eps 0 (was: training diverged, try a lower optim.lr)") {
    check_error(run_qkv({"train", config, "--out", dir + "/other", "--set", "optim.eps=0"}),
                "--set: optim.eps: expected a positive number");
  }
  SUBCASE("--resume with another task's config, and --force") {
    check_error(run_qkv({"train", config, "--out", run, "--resume", "--set", "task.type=sort",
                         "--set", "train.steps=30"}),
                "the run's task differs from this config's (the run's has `type: copy`, this "
                "config's `type: sort`)");
    const CliResult forced = run_qkv({"train", config, "--out", run, "--resume", "--force", "--set",
                                      "task.type=sort", "--set", "train.steps=30"});
    CHECK_MESSAGE(forced.code == 0, forced.err);
    check_error(run_qkv({"train", config, "--out", dir + "/other", "--force"}),
                "--force applies to --resume only");
  }
  SUBCASE("a NaN weight (eval printed \"loss\":null and exited 0)") {
    qkv::io::Checkpoint c = qkv::io::load_checkpoint(checkpoint);
    c.weights.at("head.bias").data<float>()[1] = std::numeric_limits<float>::quiet_NaN();
    qkv::io::save_checkpoint(dir + "/nan.safetensors", c);  // well-formed, checksums right
    check_error(run_qkv({"eval", dir + "/nan.safetensors"}),
                "weight 'head.bias' holds nan at element 1");
  }
  SUBCASE("a checkpoint's threads over this machine's cores are capped (OpenBLAS hung at exit)") {
    qkv::io::Checkpoint c = qkv::io::load_checkpoint(checkpoint);
    c.config_yaml = std::regex_replace(c.config_yaml, std::regex("threads: 1"), "threads: 4096");
    qkv::io::save_checkpoint(dir + "/threads.safetensors", c);
    const CliResult r = run_qkv({"eval", dir + "/threads.safetensors"});
    CHECK_MESSAGE(r.code == 0, r.err);
  }
  SUBCASE("a run too large for this machine") {
    check_error(run_qkv({"train", config, "--out", dir + "/huge", "--set", "model.d_model=16384",
                         "--set", "model.heads=1024", "--set", "model.layers=1024"}),
                "are available (MemAvailable in /proc/meminfo): parameters ");
    CHECK_FALSE(fs::exists(dir + "/huge/config.yaml"));
  }
}
