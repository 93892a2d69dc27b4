// Trainer: a small run learns, a resumed run is bit-identical to a straight one, and a
// non-finite loss stops the run without touching the last checkpoint.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>

#include "tests/run_util.hpp"
#include "io/atomic_file.hpp"
#include "io/checkpoint.hpp"
#include "train/config.hpp"
#include "train/trainer.hpp"

using qkv::test::fresh_dir;
using qkv::test::read_jsonl;
using qkv::test::write_text;
using qkv::io::Checkpoint;
using qkv::io::load_checkpoint;
using qkv::train::load_config;
using qkv::train::Trainer;
using qkv::train::TrainerOptions;

namespace {

// Copies of 4..6 tokens over 8 symbols: learned to > 0.9 exact match in a few hundred steps.
constexpr const char* kCopyConfig = R"(name: copy_small
seed: 1
task: {type: copy, symbols: 8, min_len: 4, max_len: 6}
model: {d_model: 32, heads: 2, layers: 2, d_ff: 64}
optim: {type: adam, lr: 0.003}
train: {steps: 400, batch_size: 32, eval_every: 50, eval_samples: 256, log_every: 10}
)";

// Everything that carries state across steps is on: dropout (its RNG), AdamW moments,
// warm-up (the schedule position), clipping.
constexpr const char* kResumeConfig = R"(name: resume
seed: 3
task: {type: copy, symbols: 6, min_len: 3, max_len: 5}
model: {d_model: 16, heads: 2, layers: 1, d_ff: 32, dropout: 0.1}
optim:
  type: adamw
  lr: 0.01
  weight_decay: 0.01
  clip_norm: 1.0
  schedule: {type: constant, warmup_steps: 15}
train: {steps: 30, batch_size: 8, eval_every: 10, eval_samples: 32, log_every: 5,
        checkpoint_every: 10}
)";

TrainerOptions quiet(const std::string& dir, bool resume = false) {
  TrainerOptions options;
  options.out_dir = dir;
  options.resume = resume;
  options.out = nullptr;
  return options;
}

void check_same_tensors(const std::map<std::string, qkv::core::Tensor>& a,
                        const std::map<std::string, qkv::core::Tensor>& b) {
  REQUIRE(a.size() == b.size());
  for (const auto& [name, tensor] : a) {
    CAPTURE(name);
    REQUIRE(b.count(name) == 1);
    CHECK(b.at(name).to_vector() == tensor.to_vector());  // exact, not approximate
  }
}

}  // namespace

TEST_CASE("trainer: a short seeded copy run learns (eval seq_acc >= 0.9)") {
  const std::string dir = fresh_dir("trainer_learns");
  const std::string config_path = write_text(dir + "/copy_small.yaml", kCopyConfig);
  // The target comes from the config (train.stop_at_seq_acc), as in configs/.
  Trainer trainer(load_config(config_path, {"train.stop_at_seq_acc=0.95"}), quiet(dir + "/run"));
  const qkv::train::TrainSummary summary = trainer.run();
  CHECK(summary.last_eval.seq_acc >= 0.9);
  CHECK(summary.last_eval.samples == 256);
  REQUIRE(summary.best_seq_acc.has_value());
  CHECK(*summary.best_seq_acc >= summary.last_eval.seq_acc);
  // Stopping early is the target at work: the run ends at the evaluation that reached it.
  CHECK(summary.stopped_early == (summary.last_eval.seq_acc >= 0.95));
  CHECK((summary.stopped_early || summary.steps == 400));

  for (const char* file : {"config.yaml", "metrics.jsonl", "last.safetensors", "best.safetensors"})
    CHECK_MESSAGE(std::filesystem::exists(dir + "/run/" + file), file);
  const auto lines = read_jsonl(dir + "/run/metrics.jsonl");
  REQUIRE(!lines.empty());
  std::size_t evals = 0;
  for (const auto& line : lines) {
    for (const char* key : {"step", "split", "loss", "lr", "elapsed_s"}) CHECK(line.contains(key));
    if (line["split"] == "train") {
      CHECK(line.contains("grad_norm"));
      CHECK(line.contains("tokens_per_s"));
    } else {
      CHECK(line["split"] == "eval");
      CHECK(line.contains("token_acc"));
      CHECK(line.contains("seq_acc"));
      ++evals;
    }
  }
  CHECK(evals == summary.steps / 50);
  // The checkpoint holds the run's end state.
  Checkpoint last = load_checkpoint(dir + "/run/last.safetensors");
  CHECK(last.step == summary.steps);
  CHECK(last.config_yaml == qkv::io::read_file(dir + "/run/config.yaml"));
}

TEST_CASE("trainer: training N steps then resuming in a new process is bit-identical") {
  const std::string dir = fresh_dir("trainer_resume");
  const std::string config_path = write_text(dir + "/resume.yaml", kResumeConfig);

  Trainer straight(load_config(config_path), quiet(dir + "/straight"));
  straight.run();

  {
    Trainer first_part(load_config(config_path, {"train.steps=20"}), quiet(dir + "/resumed"));
    CHECK(first_part.run().steps == 20);
  }
  // As if the first part had been killed after logging past its last checkpoint, in the
  // middle of a line: the resumed run's log must not keep those.
  std::ofstream(dir + "/resumed/metrics.jsonl", std::ios::app)
      << R"({"step":25,"split":"train","loss":123})" << "\n{\"step\":26,\"spl";
  REQUIRE(qkv::test::run_qkv_in_child(
              {"train", config_path, "--out", dir + "/resumed", "--resume"}) == 0);

  Checkpoint a = load_checkpoint(dir + "/straight/last.safetensors");
  Checkpoint b = load_checkpoint(dir + "/resumed/last.safetensors");
  CHECK(b.step == 30);
  check_same_tensors(a.weights, b.weights);
  check_same_tensors(a.optimizer.tensors, b.optimizer.tensors);
  CHECK(a.optimizer.scalars == b.optimizer.scalars);
  CHECK(a.rng_states == b.rng_states);
  CHECK(a.best_seq_acc == b.best_seq_acc);

  // The same lines (the resumed run's log continues the first part's), the same numbers.
  const auto lines_a = read_jsonl(dir + "/straight/metrics.jsonl");
  const auto lines_b = read_jsonl(dir + "/resumed/metrics.jsonl");
  REQUIRE(lines_a.size() == lines_b.size());
  for (std::size_t i = 0; i < lines_a.size(); ++i) {
    CAPTURE(lines_a[i].dump());
    for (const char* key : {"step", "split", "loss", "lr", "grad_norm", "token_acc", "seq_acc"})
      CHECK(lines_a[i].value(key, nlohmann::json()) == lines_b[i].value(key, nlohmann::json()));
  }
}

TEST_CASE("trainer: a non-finite loss stops the run and leaves the checkpoint as it was") {
  const std::string dir = fresh_dir("trainer_nan");
  const std::string config_path = write_text(dir + "/resume.yaml", kResumeConfig);
  const std::string warmup = "optim.schedule.warmup_steps=5";
  Trainer(load_config(config_path, {"train.steps=10", warmup}), quiet(dir + "/run")).run();
  const std::string last = dir + "/run/last.safetensors";
  const std::string before = qkv::io::read_file(last);

  Trainer trainer(load_config(config_path, {warmup}), quiet(dir + "/run", /*resume=*/true));
  REQUIRE(trainer.step() == 10);
  // A NaN in the output bias makes the loss NaN and every gradient behind it.
  for (auto& param : trainer.model().named_parameters())
    if (param.name == "head.bias") param.tensor.data<float>()[0] = std::nanf("");
  CHECK_THROWS_WITH_AS(trainer.run(), doctest::Contains("training diverged at step 11: loss nan"),
                       qkv::train::TrainingDiverged);
  CHECK_THROWS_WITH_AS(
      trainer.run(),
      doctest::Contains("first parameter with a non-finite gradient: tok_emb.weight"),
      qkv::train::TrainingDiverged);
  CHECK(trainer.step() == 10);
  CHECK(qkv::io::read_file(last) == before);
  CHECK(load_checkpoint(last).step == 10);
}
