// Helpers for inspect's tests: tasks and models made from YAML snippets, and one small
// copy model trained once per test binary (learned projections, a few hundred steps) whose
// run folder the command-line tests inspect and report on.
#pragma once

#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>

#include "layers/build_model.hpp"
#include "strict_yaml/config_node.hpp"
#include "tasks/registry.hpp"
#include "train/config.hpp"
#include "train/trainer.hpp"
#include "tests/run_util.hpp"

namespace qkv::test {

inline std::unique_ptr<tasks::Task> make_task(const std::string& section) {
  const ConfigNode root = ConfigNode::parse("task: " + section + "\n", "test.yaml");
  return tasks::make_task(root.section("task", "copy"), tasks::LossOn::answer, "");
}

// `model_yaml` is the body of a model: section (keys at column 0).
inline std::shared_ptr<layers::Transformer> make_model(const std::string& model_yaml,
                                                       const tasks::Task& task,
                                                       std::uint64_t seed = 1) {
  std::string indented;
  for (std::size_t begin = 0; begin < model_yaml.size();) {
    const std::size_t end = model_yaml.find('\n', begin);
    indented += "  " + model_yaml.substr(begin, end - begin) + "\n";
    begin = end == std::string::npos ? model_yaml.size() : end + 1;
  }
  const ConfigNode root = ConfigNode::parse("model:\n" + indented, "test.yaml");
  core::Rng rng(seed);
  return layers::build_model(layers::read_transformer_options(root.child("model")),
                             task.vocab_size(), task.max_seq_len(), rng);
}

// The config of the trained copy run: short prompts over few symbols, so that a few
// hundred steps teach it to copy.
inline const char* trained_copy_config() {
  return "name: inspect_copy\nseed: 3\n"
         "task: {type: copy, symbols: 8, min_len: 4, max_len: 6}\n"
         "model: {d_model: 32, heads: 2, layers: 2, d_ff: 64}\n"
         "optim: {type: adamw, lr: 3e-3, clip_norm: 1.0, "
         "schedule: {type: cosine, warmup_steps: 50, min_lr: 1e-4}}\n"
         "train: {steps: 400, batch_size: 32, eval_every: 100, eval_samples: 128, "
         "log_every: 10}\n";
}

struct TrainedRun {
  std::string dir;  // config.yaml, metrics.jsonl, best.safetensors, last.safetensors
  std::unique_ptr<train::Trainer> trainer;
  layers::Transformer* model = nullptr;
  const tasks::Task* task = nullptr;
};

// Trained on first use, then shared by every test of the binary.
inline const TrainedRun& trained_copy_run() {
  static const TrainedRun run = [] {
    TrainedRun r;
    r.dir = fresh_dir("inspect_copy");
    train::TrainerOptions options;
    options.out_dir = r.dir;
    options.out = nullptr;
    r.trainer = std::make_unique<train::Trainer>(
        train::parse_config(trained_copy_config(), "inspect_copy.yaml"), options);
    r.trainer->run();
    r.model = &r.trainer->model();
    r.task = &r.trainer->task();
    return r;
  }();
  return run;
}

}  // namespace qkv::test
