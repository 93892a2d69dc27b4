// load_model: a checkpoint from a short Trainer run comes back with its config, task,
// vocabulary, step and exact weights, and evaluates to the loss the trainer measured (what
// `qkv eval` prints, which loads through it); a file that is not a checkpoint, a truncated
// one, wrong or missing tensors, a changed vocabulary or config give one line naming it.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "inspect/load_model.hpp"
#include "io/checkpoint.hpp"
#include "train/config.hpp"
#include "train/evaluate.hpp"
#include "train/trainer.hpp"
#include "tests/run_util.hpp"

using qkv::test::fresh_dir;
using namespace qkv;

namespace {

constexpr const char* kConfig = R"(name: load_model
seed: 5
task: {type: copy, symbols: 6, min_len: 3, max_len: 5}
model: {d_model: 16, heads: 2, layers: 2, d_ff: 32}
optim: {type: adam, lr: 0.003}
train: {steps: 30, batch_size: 16, eval_every: 30, eval_samples: 64, log_every: 10}
)";

struct Run {
  std::string checkpoint;
  train::TrainSummary summary;
  std::map<std::string, core::Tensor> weights;
  std::vector<std::string> vocabulary;
};

const Run& short_run() {
  static const Run run = [] {
    train::TrainerOptions options;
    options.out_dir = fresh_dir("inspect_load_model") + "/run";
    options.out = nullptr;
    train::Trainer trainer(train::parse_config(kConfig, "load_model.yaml"), options);
    Run r;
    r.summary = trainer.run();
    r.checkpoint = options.out_dir + "/last.safetensors";
    r.weights = trainer.model().state();
    r.vocabulary = trainer.task().token_names();
    return r;
  }();
  return run;
}

// The message load_model throws for `path` (fails the test if it loads).
std::string load_error(const std::string& path) {
  try {
    inspect::load_model(path);
  } catch (const std::runtime_error& error) {
    return error.what();
  }
  FAIL("load_model('" << path << "') did not throw");
  return "";
}

void check_one_line(const std::string& message, const std::string& path, const std::string& what) {
  CAPTURE(message);
  CHECK(message.find('\n') == std::string::npos);
  CHECK(message.find(path) != std::string::npos);
  CHECK(message.find(what) != std::string::npos);
}

std::string write_modified(const std::string& name, void (*change)(io::Checkpoint&)) {
  io::Checkpoint checkpoint = io::load_checkpoint(short_run().checkpoint);
  change(checkpoint);
  const std::string path = fresh_dir("inspect_load_model_" + name) + "/bad.safetensors";
  io::save_checkpoint(path, checkpoint);
  return path;
}

}  // namespace

TEST_CASE("load_model: a trained checkpoint back as config, task, vocabulary, step and weights") {
  const Run& run = short_run();
  const inspect::LoadedModel loaded = inspect::load_model(run.checkpoint);
  CHECK(loaded.config.name == "load_model");
  CHECK(loaded.step == 30);
  CHECK(loaded.task->name() == "copy");
  CHECK(loaded.vocabulary == run.vocabulary);
  CHECK_FALSE(loaded.model->is_training());
  const std::map<std::string, core::Tensor> weights = loaded.model->state();
  REQUIRE(weights.size() == run.weights.size());
  for (const auto& [name, tensor] : run.weights) {
    CAPTURE(name);
    CHECK(weights.at(name).to_vector() == tensor.to_vector());
  }

  // The held-out evaluation the trainer ran last, and `qkv eval` runs, gives its numbers.
  const train::EvalResult result = train::evaluate(
      *loaded.model, *loaded.task,
      train::make_eval_batches(*loaded.task, loaded.task->eval_examples(loaded.config.train.eval_samples,
                                                                        loaded.config.seed)));
  CHECK(result.loss == run.summary.last_eval.loss);
  CHECK(result.token_acc == run.summary.last_eval.token_acc);
  CHECK(result.seq_acc == run.summary.last_eval.seq_acc);
  CHECK(result.samples == 64);
}

TEST_CASE("load_model: a bad file is one line naming it and what is wrong") {
  const std::string good = short_run().checkpoint;
  const std::string dir = fresh_dir("inspect_load_model_bad");
  SUBCASE("not a checkpoint") {
    const std::string path = dir + "/notes.safetensors";
    std::ofstream(path) << "these are my notes, not tensors\n";
    check_one_line(load_error(path), path, "notes.safetensors");
  }
  SUBCASE("truncated") {
    std::ifstream in(good, std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const std::string path = dir + "/truncated.safetensors";
    std::ofstream(path, std::ios::binary) << bytes.substr(0, bytes.size() / 2);
    check_one_line(load_error(path), path, "truncated.safetensors");
  }
  SUBCASE("a tensor of the wrong shape") {
    const std::string path = write_modified("shape", [](io::Checkpoint& c) {
      c.weights["head.bias"] = core::Tensor::zeros({3});
    });
    check_one_line(load_error(path), path, "head.bias");
    check_one_line(load_error(path), path, "[3]");
  }
  SUBCASE("a tensor missing") {
    const std::string path = write_modified("missing", [](io::Checkpoint& c) { c.weights.erase("ln_f.bias"); });
    check_one_line(load_error(path), path, "ln_f.bias");
  }
  SUBCASE("a vocabulary that is not its task's") {
    const std::string path = write_modified("vocabulary", [](io::Checkpoint& c) { c.vocabulary[3] = "zz"; });
    check_one_line(load_error(path), path, "at id 3: stored 'zz', task '");
  }
  SUBCASE("a config naming a layer type this program does not have") {
    const std::string path = write_modified("layer_type", [](io::Checkpoint& c) {
      const std::string from = "type: multi_head_attention";
      c.config_yaml.replace(c.config_yaml.find(from), from.size(), "type: bilinear_attention");
    });
    check_one_line(load_error(path), path, "bilinear_attention");
  }
}
