// `qkv ablate`: a sweep end to end through the command (its plan line, a line per run,
// the table, the files; run again, nothing to train), its flags over the config's ablate:
// section, its errors, and Ctrl-C on the qkv executable: exit 130 with the command that
// finishes the sweep, which then does.
#include <doctest/doctest.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "tests/run_util.hpp"

using qkv::test::CliResult;
using qkv::test::check_one_line_error;
using qkv::test::fresh_dir;
using qkv::test::read_text;
using qkv::test::run_qkv;
using qkv::test::write_text;

namespace {

namespace fs = std::filesystem;

std::string tiny_sweep(std::size_t steps, const std::string& ablate) {
  return "name: tiny\nseed: 1\n"
         "task: {type: copy, symbols: 4, min_len: 2, max_len: 4}\n"
         "model: {d_model: 16, heads: 2, layers: 1, d_ff: 32}\n"
         "optim: {type: adamw, lr: 0.01, schedule: {type: cosine, warmup_steps: 5}}\n"
         "train: {steps: " + std::to_string(steps) +
         ", batch_size: 8, eval_every: 10, eval_samples: 32, log_every: 5}\n"
         "ablate: " + ablate + "\n";
}

const std::string kAblate = "{variants: [learned, none], seeds: 2, target: 0.3}";

}  // namespace

TEST_CASE("ablate CLI: a sweep end to end, then again with nothing to train") {
  const std::string dir = fresh_dir("ablate_cli");
  const std::string config = write_text(dir + "/tiny.yaml", tiny_sweep(30, kAblate));
  const CliResult first = run_qkv({"ablate", config, "--out", dir + "/sweep", "--jobs", "1"});
  CAPTURE(first.err);
  REQUIRE(first.code == 0);
  CHECK(first.out.find("# ablate tiny: 2 variants (learned, none) x 2 seeds = 4 runs of 30 steps "
                       "into " + dir + "/sweep/; 0 finished, 0 to resume, 4 to start; 1 at a time\n") == 0);
  CHECK(first.out.find("\n[1/4] learned seed 1: best seq_acc ") != std::string::npos);
  CHECK(first.out.find("\n[4/4] none seed 2: best seq_acc ") != std::string::npos);
  CHECK(first.out.find("| `learned` | 1088 | ") != std::string::npos);
  CHECK(first.out.find("| `none` | 0 | ") != std::string::npos);
  CHECK(first.out.find("wrote " + dir + "/sweep/ablation_maps.svg, " + dir + "/sweep/ablation.md, ") !=
        std::string::npos);
  for (const char* file : {"ablation.md", "ablation.csv", "ablation.json", "ablation_maps.svg"})
    CHECK(fs::exists(dir + "/sweep/" + file));

  const std::string table = read_text(dir + "/sweep/ablation.csv");
  const CliResult again = run_qkv({"ablate", config, "--out", dir + "/sweep"});
  REQUIRE(again.code == 0);
  CHECK(again.out.find("4 finished, 0 to resume, 0 to start") != std::string::npos);
  CHECK(again.out.find("# done: 0 runs trained now (0 resumed), 4 were finished before") !=
        std::string::npos);
  CHECK(read_text(dir + "/sweep/ablation.csv") == table);
}

TEST_CASE("ablate CLI: --variants and --seeds override the config's ablate: section") {
  const std::string dir = fresh_dir("ablate_cli_flags");
  const std::string config = write_text(dir + "/tiny.yaml", tiny_sweep(20, kAblate));
  const CliResult result = run_qkv({"ablate", config, "--out", dir + "/sweep", "--variants",
                                    "kq=identity,none", "--seeds", "1", "--set", "seed=7"});
  CAPTURE(result.err);
  REQUIRE(result.code == 0);
  CHECK(result.out.find("2 variants (qk=identity, none) x 1 seed = 2 runs") != std::string::npos);
  CHECK(fs::exists(dir + "/sweep/qk=identity/seed-7/last.safetensors"));
  CHECK(fs::exists(dir + "/sweep/none/seed-7/last.safetensors"));
  CHECK(!fs::exists(dir + "/sweep/ablation_maps.svg"));  // no learned model to compare
}

TEST_CASE("ablate CLI: bad input is a one-line error saying what was expected") {
  const std::string dir = fresh_dir("ablate_cli_errors");
  const std::string config = write_text(dir + "/tiny.yaml", tiny_sweep(20, kAblate));
  const std::string out = dir + "/sweep";
  check_one_line_error(run_qkv({"ablate", config, "--out", out, "--variants", "learned,qk=identiy"}),
              "variant 'qk=identiy': unknown kind 'identiy'; did you mean 'qk=identity'? (a "
              "variant is learned, none, <letters>=<kind>");
  check_one_line_error(run_qkv({"ablate", config, "--out", out, "--variants", "learned,none,learned"}),
              "variants 'learned' and 'learned' are the same variant");
  check_one_line_error(run_qkv({"ablate", config, "--seeds", "0"}), "--seeds");
  check_one_line_error(run_qkv({"ablate", config, "--jobs", "0"}), "--jobs");
  check_one_line_error(run_qkv({"ablate", dir + "/missing.yaml"}), "missing.yaml");
  const std::string misspelt = write_text(dir + "/misspelt.yaml", tiny_sweep(20, "{seed: 2}"));
  check_one_line_error(run_qkv({"ablate", misspelt, "--out", out}),
              "misspelt.yaml:7:10: unknown key 'ablate.seed'; did you mean 'ablate.seeds'?");
  const std::string target = write_text(dir + "/target.yaml", tiny_sweep(20, "{target: 2}"));
  check_one_line_error(run_qkv({"ablate", target, "--out", out}),
              "target.yaml:7:18: ablate.target: expected a held-out seq_acc in (0, 1] that counts "
              "as solved, found 2");
  check_one_line_error(run_qkv({"ablate", config, "--out", out, "--set", "ablate.seeds=0"}),
              "--set: ablate.seeds: expected a number of seeds from 1 to 1000, found 0");
  // A sweep config is many runs: qkv train says what to do instead of training one.
  check_one_line_error(run_qkv({"train", config, "--out", dir + "/run"}),
              "tiny.yaml:7:9: ablate: this is a sweep config: `qkv ablate` reads this section");
  CHECK(!fs::exists(out));
}

TEST_CASE("ablate CLI: Ctrl-C stops the sweep with its checkpoints; the command it prints finishes it") {
  const std::string dir = fresh_dir("ablate_cli_sigint");
  const std::string config = write_text(dir + "/tiny.yaml", tiny_sweep(400, kAblate));
  const std::string out = dir + "/sweep";
  std::fflush(nullptr);
  const pid_t child = ::fork();
  if (child == 0) {
    const int sink = ::open("/dev/null", O_WRONLY);
    const int err = ::open((dir + "/err.txt").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (sink < 0 || err < 0 || ::dup2(sink, 1) < 0 || ::dup2(err, 2) < 0) _exit(120);
    const char* argv[] = {QKV_EXECUTABLE, "ablate", config.c_str(), "--out", out.c_str(),
                          "--jobs", "1", nullptr};
    ::execv(QKV_EXECUTABLE, const_cast<char* const*>(argv));
    _exit(121);
  }
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  std::error_code missing;
  while (fs::file_size(out + "/learned/seed-2/metrics.jsonl", missing) == 0 || missing) {
    REQUIRE(std::chrono::steady_clock::now() < give_up);
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  REQUIRE(::kill(child, SIGINT) == 0);
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 130);
  const std::string err = read_text(dir + "/err.txt");
  const std::string again = "qkv ablate " + config + " --out " + out;
  CHECK(err == "qkv: stopped by SIGINT with 1 of 4 runs finished (the others saved where they "
               "stopped); finish the sweep with: " + again + "\n");
  const CliResult finished = run_qkv({"ablate", config, "--out", out});
  CAPTURE(finished.err);
  REQUIRE(finished.code == 0);
  CHECK(finished.out.find("1 finished, 1 to resume, 2 to start") != std::string::npos);
  CHECK(finished.out.find("# done: 3 runs trained now (1 resumed), 1 were finished before") !=
        std::string::npos);
}
