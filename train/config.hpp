// Config: a run's YAML file read into typed, validated options.
//
// Sections: name, seed, task, model, optim, train. Each folder reads and writes its own:
// the task section is a registered task type with its keys (tasks/registry.hpp), the model
// section is layers::TransformerOptions (layers/model_options.hpp), the optim section is
// optim::OptimizerOptions; name, seed and the train section are read here. Reading is
// strict (strict_yaml/config_node.hpp): an unknown or misspelled key, a duplicate key, a
// wrong type or an out-of-range value is a ConfigError naming the key path, what was
// expected and what was found, with the file, line and column it came from.
//
// A file may start from another: `base: ../copy.yaml`, then the keys it changes. Bases are
// merged before anything is read, relative to the file that names them; errors name the
// file each key came from, and a cycle of bases is an error.
//
// Overrides (`--set optim.lr=3e-4`) use the same paths and checks; the value is parsed as
// YAML and replaces the file's value before reading. Errors about an override's value (or
// an unknown key it introduces) name the source "--set".
//
// Relative data paths (task.train_file, ...) are resolved against the folder of the file
// that gave them (the current folder for --set) and stored absolute, so the resolved
// config reads the same from anywhere. A checkpoint's saved config is read with
// parse_checkpoint_config: its paths are never opened (a checkpoint is someone else's
// file), and the task comes back from the checkpoint's saved task state.
//
// Limits: every size has an upper bound, an error at its key past it: train.batch_size
// 65536, train.eval_samples 1000000, train.threads the cores this process may use (a
// saved config is not held to that: its readers cap the threads); the model's in
// layers/build_model.hpp, the tasks' in tasks/limits.hpp (at most 100000 tokens of a
// task's own and 4096 positions, checked for every task here), the text's in
// strict_yaml/config_node.hpp. Every token name must be UTF-8 without NUL bytes, as
// every string of the config is: they are all written into checkpoints. Whether a run
// fits in memory is checked before the model is built (resources.hpp).
//
// The model's layer sections (attention, norm, ffn, positional) are read by the layers'
// factories when the model is built (once, by whoever trains or evaluates); only then are
// their keys checked and their defaults known. to_yaml() writes every value and default
// that has been read: after the model is built, the whole resolved config.
//
//   Config config = load_config("configs/copy.yaml", {"optim.lr=3e-4", "train.steps=500"});
//   auto task = config.make_task();
//   auto model = layers::build_model(config.model, task->vocab_size(), task->max_seq_len(), rng);
//   std::string text = to_yaml(config);                // the resolved config
//   Config again = parse_config(text, "config.yaml");  // the same options
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "layers/build_model.hpp"
#include "optim/options.hpp"
#include "strict_yaml/config_node.hpp"
#include "tasks/task.hpp"

namespace qkv::train {

using qkv::ConfigError;

constexpr std::size_t kMaxBatchSize = 65536;
constexpr std::size_t kMaxEvalSamples = 1000000;  // also qkv eval --samples

struct TrainConfig {
  std::size_t steps = 1000;           // > 0
  std::size_t batch_size = 32;        // 1..kMaxBatchSize
  std::size_t eval_every = 100;       // > 0; also after the last step
  std::size_t eval_samples = 512;     // 1..kMaxEvalSamples
  std::size_t threads = 1;            // 1..the cores available: OpenBLAS threads
  std::size_t checkpoint_every = 0;   // 0: only at evaluations and the end
  std::size_t log_every = 10;         // > 0
  tasks::LossOn loss_on = tasks::LossOn::answer;  // answer | all
  double stop_at_seq_acc = 0;         // in [0, 1]; > 0: stop once eval seq_acc reaches it
};

struct Config {
  std::string name;        // the run's name (default: the config file's stem)
  std::uint64_t seed = 0;
  TypedSection task;       // a registered task type and its keys (read when it is made)
  layers::TransformerOptions model;
  optim::OptimizerOptions optim;
  TrainConfig train;
  // The task this config describes; `state` is a checkpoint's Task::state() (the file
  // task's saved vocabulary), "" for a fresh run.
  std::unique_ptr<tasks::Task> make_task(const std::string& state = "") const;
};

// Reads and validates a config file (its bases merged), then applies `overrides`
// ("key.path=value"). Throws ConfigError (bad content or overrides) or std::runtime_error
// (unreadable file).
Config load_config(const std::string& path, const std::vector<std::string>& overrides = {});
// The same from YAML text; `source` names it in messages and relative data paths resolve
// against the current folder.
Config parse_config(const std::string& text, const std::string& source,
                    const std::vector<std::string>& overrides = {});
// A tree of the user's own (load_config_tree, its overrides applied) whose caller reads
// a section of its own from it first: `qkv ablate` reads `ablate:`, which load_config and
// parse_config refuse (a sweep config describes many runs). `default_name` is the name
// when the tree has none (the file's stem).
Config read_config_tree(const ConfigNode& root, const std::string& default_name);
// A checkpoint's saved config (Checkpoint::config_yaml) with its saved task state: the
// same checks, except that no path in it is opened (ConfigNode::parse_foreign; the file
// task comes back from `task_state`, saved eval examples included) and its threads are
// not held to this machine's cores.
Config parse_checkpoint_config(const std::string& yaml, const std::string& source,
                               const std::string& task_state);

// The resolved config as YAML, every value read written (defaults included); reading it
// back gives the same Config.
std::string to_yaml(const Config& config);

// Where two resolved configs (to_yaml's text) part, for an error that says why they are
// not one run: "the run's has `symbols: 8`, this config's `symbols: 16`" for
// first_difference(run's, mine, "config"); "no line differs" when none does.
std::string first_difference(const std::string& was, const std::string& now,
                             const std::string& now_name);

}  // namespace qkv::train
