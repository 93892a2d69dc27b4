// What the trainer checks before and while it runs (issue #12): one writer per run folder,
// the task on --resume (and --force), memory and cores, the token text every task hands
// on, a finite loss too large to be learning, and an optimizer whose state is corrupt.
#include <doctest/doctest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "io/checkpoint.hpp"
#include "tasks/generated.hpp"
#include "tasks/registry.hpp"
#include "tests/run_util.hpp"
#include "train/config.hpp"
#include "train/resources.hpp"
#include "train/run_lock.hpp"
#include "train/trainer.hpp"

using qkv::test::fresh_dir;
using qkv::test::read_jsonl;
using qkv::test::write_text;
using namespace qkv::train;

namespace {

constexpr const char* kConfig = R"(name: guards
seed: 4
task: {type: copy, symbols: 6, min_len: 2, max_len: 4}
model: {d_model: 16, heads: 2, layers: 1, d_ff: 32}
optim: {type: adam, lr: 0.01}
train: {steps: 20, batch_size: 8, eval_every: 10, eval_samples: 16, log_every: 5}
)";

TrainerOptions quiet(const std::string& dir, bool resume = false) {
  TrainerOptions options;
  options.out_dir = dir;
  options.resume = resume;
  options.out = nullptr;
  return options;
}

// A task whose token names the trainer could not write into a checkpoint's JSON.
class Latin1Task : public qkv::tasks::Task {
 public:
  explicit Latin1Task(const std::vector<std::string>& tokens, std::size_t length)
      : Task("latin1", tokens, length, qkv::tasks::LossOn::answer) {}
  std::vector<qkv::tasks::Example> eval_examples(std::size_t, std::uint64_t) const override {
    return {};
  }

 protected:
  qkv::tasks::Example draw_training(qkv::core::Rng&) const override { return {{3}, {3}}; }
};

const qkv::tasks::RegisterTask latin1_registration(
    "test_latin1", [](const qkv::ConfigNode& options, qkv::tasks::LossOn, const std::string&) {
      // A config's own text is UTF-8 already (strict_yaml checks it): the bad byte is the
      // task's, as a task reading a Latin-1 word list would make it.
      const bool latin1 = options.get<bool>("latin1", false);
      const std::vector<std::string> tokens = {latin1 ? "caf\xe9" : "caf\xc3\xa9"};
      return std::make_unique<Latin1Task>(tokens, options.get<std::size_t>("length", 4));
    });

}  // namespace

TEST_CASE("run lock: a second writer is refused with the holder's pid, in this or another process") {
  const std::string dir = fresh_dir("run_lock");
  SUBCASE("in this process") {
    auto first = std::make_unique<RunLock>(dir);
    CHECK(qkv::test::read_text(dir + "/.lock") == std::to_string(::getpid()) + "\n");
    CHECK_THROWS_WITH_AS(RunLock{dir},
                         ("run folder '" + dir + "' is in use by another qkv (pid " +
                          std::to_string(::getpid()) + ", holding " + dir +
                          "/.lock): wait for it to finish, or train into another folder with --out")
                             .c_str(),
                         std::runtime_error);
    first.reset();
    CHECK_NOTHROW(RunLock{dir});  // released with its holder
  }
  SUBCASE("in another process, through the trainer") {
    int ready[2], done[2];
    REQUIRE(::pipe(ready) == 0);
    REQUIRE(::pipe(done) == 0);
    std::fflush(nullptr);
    const pid_t child = ::fork();
    if (child == 0) {
      RunLock held(dir);
      char byte = 1;
      if (::write(ready[1], &byte, 1) != 1) _exit(2);
      if (::read(done[0], &byte, 1) < 0) _exit(3);  // until the parent is done
      _exit(0);
    }
    char byte = 0;
    REQUIRE(::read(ready[0], &byte, 1) == 1);
    const std::string config = write_text(dir + "/guards.yaml", kConfig);
    CHECK_THROWS_WITH_AS(Trainer(load_config(config), quiet(dir)),
                         doctest::Contains(("is in use by another qkv (pid " +
                                            std::to_string(child) + ",").c_str()),
                         std::runtime_error);
    REQUIRE(::write(done[1], &byte, 1) == 1);
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    CHECK(WIFEXITED(status));
    // The holder is gone, and so is its lock (the kernel drops it at exit).
    CHECK_NOTHROW(Trainer(load_config(config), quiet(dir)).run());
    for (int fd : {ready[0], ready[1], done[0], done[1]}) ::close(fd);
  }
}

TEST_CASE("trainer: --resume with another task is refused; --force continues on purpose") {
  const std::string dir = fresh_dir("trainer_task_change");
  const std::string config = write_text(dir + "/guards.yaml", kConfig);
  Trainer(load_config(config), quiet(dir + "/run")).run();
  const std::vector<std::string> reverse = {"task.type=reverse", "train.steps=30"};

  // Same vocabulary and shapes: it used to train the reverse task silently into this run.
  CHECK_THROWS_WITH_AS(
      Trainer(load_config(config, reverse), quiet(dir + "/run", /*resume=*/true)),
      doctest::Contains("the run's task differs from this config's (the run's has `type: copy`, "
                        "this config's `type: reverse`): resuming would train another task into "
                        "this run. Add --force"),
      std::runtime_error);
  CHECK_THROWS_WITH_AS(
      Trainer(load_config(config, {"task.symbols=5", "train.steps=30"}),
              quiet(dir + "/run", true)),
      doctest::Contains("(the run's has `symbols: 6`, this config's `symbols: 5`)"),
      std::runtime_error);

  TrainerOptions forced = quiet(dir + "/run", true);
  forced.force = true;
  Trainer trainer(load_config(config, reverse), forced);
  const TrainSummary summary = trainer.run();
  CHECK(summary.steps == 30);
  const auto lines = read_jsonl(dir + "/run/metrics.jsonl");
  std::size_t notes = 0;
  for (const auto& line : lines) {
    if (line["split"] != "note") continue;
    ++notes;
    CHECK(line["step"] == 20);
    CHECK(line["note"].get<std::string>().find("the task changed") != std::string::npos);
    CHECK(line["was"].get<std::string>().find("type: copy") != std::string::npos);
    CHECK(line["now"].get<std::string>().find("type: reverse") != std::string::npos);
  }
  CHECK(notes == 1);
  // The best of the copy task is forgotten: the first evaluation after it writes best.
  CHECK(qkv::io::load_checkpoint(dir + "/run/best.safetensors").step >= 30);
  // A resume with the same (new) task needs no --force.
  CHECK_NOTHROW(Trainer(load_config(config, {"task.type=reverse", "train.steps=30"}),
                        quiet(dir + "/run", true)));
}

TEST_CASE("trainer: a finite loss of 5e12 is divergence, caught before the optimizer step") {
  const std::string dir = fresh_dir("trainer_huge_loss");
  Trainer trainer(load_config(write_text(dir + "/guards.yaml", kConfig)), quiet(dir + "/run"));
  // PAD is never a target: a huge PAD logit makes every loss term about 5e12, finite, with
  // finite gradients (softmax probabilities), which the non-finite guard let through.
  for (auto& param : trainer.model().named_parameters())
    if (param.name == "head.bias") param.tensor.data<float>()[0] = 5e12f;
  CHECK_THROWS_WITH_AS(trainer.train_step(),
                       doctest::Contains("the loss is over 100 x ln(V) = 219.7 (a model guessing "
                                         "uniformly scores ln(V) = 2.197)"),
                       TrainingDiverged);
  CHECK(trainer.step() == 0);
}

TEST_CASE("trainer: a corrupt optimizer state is named as such, not as a learning rate") {
  // A moment out of the range training reaches, with valid checksums: the file is
  // consistent, its numbers are not. An exp_avg_sq below 0 makes the parameter NaN; an
  // exp_avg of 3e38 makes it -inf (the update overflows).
  for (const auto& [moment, value] : {std::pair<std::string, float>{"head.bias.exp_avg_sq", -1.0f},
                                      {"head.bias.exp_avg", 3e38f}}) {
    CAPTURE(moment);
    const std::string dir = fresh_dir("trainer_corrupt_moments");
    const std::string config = write_text(dir + "/guards.yaml", kConfig);
    Trainer(load_config(config, {"train.steps=10"}), quiet(dir + "/run")).run();
    const std::string last = dir + "/run/last.safetensors";
    qkv::io::Checkpoint checkpoint = qkv::io::load_checkpoint(last);
    bool edited = false;
    for (auto& [name, tensor] : checkpoint.optimizer.tensors) {
      if (name != moment) continue;
      tensor.data<float>()[1] = value;
      edited = true;
    }
    REQUIRE(edited);
    qkv::io::save_checkpoint(last, checkpoint);
    Trainer resumed(load_config(config), quiet(dir + "/run", /*resume=*/true));
    try {
      resumed.run();
      FAIL("no error");
    } catch (const TrainingDiverged& error) {
      const std::string message = error.what();
      CHECK(message.find("the optimizer (adam) made parameter head.bias non-finite (element 1) at "
                         "step 11, from finite gradients") != std::string::npos);
      CHECK(message.find("its state is corrupt") != std::string::npos);
      CHECK(message.find("Try a lower optim.lr") == std::string::npos);
    }
    CHECK(qkv::io::load_checkpoint(last).step == 10);  // nothing was saved
  }
}

TEST_CASE("trainer: a run that cannot fit in memory is refused before anything is built") {
  const std::string dir = fresh_dir("trainer_memory");
  const std::string config = write_text(dir + "/guards.yaml", kConfig);
  // About 13 TB of parameters alone: more than any machine running these tests has.
  const Config huge = load_config(config, {"model.d_model=16384", "model.heads=1024",
                                           "model.layers=1024", "model.d_ff=65536"});
  try {
    Trainer trainer(huge, quiet(dir + "/run"));
    FAIL("no error");
  } catch (const std::runtime_error& error) {
    const std::string message = error.what();
    CAPTURE(message);
    CHECK(message.find("the run needs about ") == 0);
    CHECK(message.find("are available (MemAvailable in /proc/meminfo): parameters 13.2 TB, their "
                       "gradients 13.2 TB, optimizer state (adam) 26.4 TB, activations of one step "
                       "(8 rows x 9 positions)") != std::string::npos);
    CHECK(message.find("; lower model.d_model, model.layers, train.batch_size or the task's "
                       "lengths") != std::string::npos);
  }
  SUBCASE("against a given amount") {
    const MemoryEstimate need = estimate_memory(load_config(config), 9, 9, true);
    CHECK_NOTHROW(check_memory(need, need.total()));
    CHECK_THROWS_WITH_AS(check_memory(need, need.total() - 1),
                         doctest::Contains("the run needs about"), std::runtime_error);
    CHECK_NOTHROW(check_memory(need, std::nullopt));  // unknown: nothing is checked
  }
}

TEST_CASE("memory estimate: the reference architecture's parameters are counted exactly") {
  const std::string dir = fresh_dir("memory_estimate");
  const std::string config = write_text(dir + "/guards.yaml", kConfig);
  for (const std::vector<std::string>& sets : std::vector<std::vector<std::string>>{
           {},
           {"model.layers=3", "model.d_ff=48"},
           {"model.attention.qk=merged"},
           {"model.attention.qk=tied"},
           {"model.attention.projections=none"},
           {"model.ffn=none"},
           {"model.ffn.hidden=24"},
           {"model.positional=sinusoidal_positions"},
           {"optim.type=sgd", "optim.momentum=0.9"}}) {
    std::string shown;
    for (const std::string& set : sets) shown += set + " ";
    CAPTURE(shown);
    Trainer trainer(load_config(config, sets), quiet(dir + "/run"));
    const std::size_t vocab = trainer.task().vocab_size();
    const MemoryEstimate e =
        estimate_memory(trainer.config(), vocab, trainer.task().max_seq_len(), true);
    const std::size_t frozen_or_buffers = trainer.model().buffer_count();
    CHECK(e.parameters == 4 * (trainer.model().parameter_count() + frozen_or_buffers));
    CHECK(e.gradients == e.parameters);
    const bool adam = trainer.config().optim.type != "sgd";
    CHECK(e.optimizer == (adam ? 2 : 1) * e.parameters);
  }
}

TEST_CASE("config: threads over this machine's cores are an error, not a hang at exit") {
  const std::string dir = fresh_dir("config_threads");
  const std::string config = write_text(dir + "/guards.yaml", kConfig);
  const std::size_t cores = available_cores();
  CHECK_NOTHROW(load_config(config, {"train.threads=" + std::to_string(cores)}));
  CHECK_THROWS_WITH_AS(load_config(config, {"train.threads=" + std::to_string(cores + 1)}),
                       ("--set: train.threads: expected at most " + std::to_string(cores) +
                        " threads (the cores this process may use; more made OpenBLAS hang at "
                        "exit), found " + std::to_string(cores + 1))
                           .c_str(),
                       qkv::ConfigError);
  // A checkpoint's saved config was another machine's choice: it still reads.
  CHECK(parse_checkpoint_config(
            "name: x\ntask: {type: copy}\nmodel: {d_model: 16, heads: 2, layers: 1}\n"
            "train: {threads: 100000}\n",
            "ckpt (its config)", "")
            .train.threads == 100000);
}

TEST_CASE("config: the train sizes and every task's tokens and lengths are bounded") {
  const std::string dir = fresh_dir("config_bounds");
  const std::string config = write_text(dir + "/guards.yaml", kConfig);
  CHECK_THROWS_WITH_AS(load_config(config, {"train.batch_size=100000"}),
                       "--set: train.batch_size: expected at most 65536 (train/config.hpp), found "
                       "100000",
                       qkv::ConfigError);
  CHECK_THROWS_WITH_AS(load_config(config, {"train.eval_samples=2000000"}),
                       doctest::Contains("train.eval_samples: expected at most 1000000"),
                       qkv::ConfigError);
  // A user's task: its tokens go into every checkpoint's JSON, so they must be UTF-8 (a
  // bad one used to pass here and fail at the first checkpoint, losing the steps before).
  const std::string custom = "name: x\nmodel: {d_model: 16, heads: 2, layers: 1}\n";
  CHECK_NOTHROW(parse_config(custom + "task: {type: test_latin1}\n", "t.yaml"));
  CHECK_THROWS_WITH_AS(
      parse_config(custom + "task: {type: test_latin1, latin1: true}\n", "t.yaml"),
      doctest::Contains("task: token 'caf\\xe9' is not UTF-8 text without NUL bytes: the byte "
                        "0xe9 at byte 3"),
      qkv::ConfigError);
  CHECK_THROWS_WITH_AS(
      parse_config(custom + "task: {type: test_latin1, length: 5000}\n", "t.yaml"),
      doctest::Contains("task: the task's examples need up to 5001 positions; the limit is 4096"),
      qkv::ConfigError);
}
