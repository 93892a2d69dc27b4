// Config: a run's YAML file read into typed, validated structs.
//
// Sections: name, seed, task, model, optim, train. Reading is strict (layers/ConfigNode):
// an unknown or misspelled key, a duplicate key, a wrong type or an out-of-range value is a
// ConfigError naming the key path, what was expected and what was found, with the file's
// line and column. The model section stays a YAML node (the layers' model builder reads it)
// but is validated at load time by building the model once.
//
// Overrides (`--set optim.lr=3e-4`) use the same paths and checks; the value is parsed as
// YAML (a scalar or a flow sequence/mapping) and replaces the file's value before reading,
// so an override can also repair a file. Errors about an override's value (or an unknown
// key it introduces) name the source "--set"; errors in the file keep its line and column.
//
// Relative data paths (task.train_file, task.eval_file) are resolved against the config
// file's folder (against the current folder when given by --set) and stored absolute, so
// the resolved config reads the same from anywhere.
//
//   Config config = load_config("configs/copy.yaml", {"optim.lr=3e-4", "train.steps=500"});
//   std::string text = to_yaml(config);          // the resolved config (every default written)
//   Config again = parse_config(text, "config.yaml");  // to_yaml(again) == text
//   auto optimizer = make_optimizer(config.optim, config.train.steps, model.named_parameters());
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "core/parameter.hpp"
#include "strict_yaml/config_node.hpp"
#include "optim/optimizer.hpp"
#include "optim/schedule.hpp"
#include "tasks/task.hpp"

namespace qkv::train {

using qkv::ConfigError;

struct OptimConfig {
  std::string type = "adamw";  // sgd | adam | adamw
  double lr = 1e-3;            // > 0
  double beta1 = 0.9;          // adam(w), YAML `betas: [beta1, beta2]`, each in [0, 1)
  double beta2 = 0.999;
  double eps = 1e-8;           // adam(w), >= 0
  double momentum = 0.0;       // sgd, [0, 1)
  bool nesterov = false;       // sgd, needs momentum > 0
  double weight_decay = 0.0;   // >= 0; on linear weights only (see optim::split_decay_groups)
  bool decay_embeddings = false;
  double clip_norm = 0.0;      // clip the global gradient norm to this; 0: off
  double clip_value = 0.0;     // clip each gradient element to [-v, v]; 0: off
  // type, warmup_steps, min_lr, step_size, gamma (YAML `schedule:`); total_steps is
  // train.steps.
  optim::ScheduleOptions schedule;
};

struct TrainConfig {
  std::size_t steps = 1000;           // > 0
  std::size_t batch_size = 32;        // > 0
  std::size_t eval_every = 100;       // > 0; also after the last step
  std::size_t eval_samples = 512;     // > 0
  std::size_t threads = 1;            // > 0: OpenBLAS threads
  std::size_t checkpoint_every = 0;   // 0: only at evaluations and the end
  std::size_t log_every = 10;         // > 0
  tasks::LossOn loss_on = tasks::LossOn::answer;    // answer | all
  double stop_at_seq_acc = 0;         // in [0, 1]; > 0: stop once eval seq_acc reaches it
};

struct Config {
  std::string name;        // the run's name (default: the config file's stem)
  std::uint64_t seed = 0;
  tasks::TaskConfig task;
  YAML::Node model;        // the model section as written (validated at load)
  OptimConfig optim;
  TrainConfig train;
};

// Reads and validates a config file, then applies `overrides` ("key.path=value").
// Throws ConfigError (bad content or overrides) or std::runtime_error (unreadable file).
Config load_config(const std::string& path, const std::vector<std::string>& overrides = {});
// The same from YAML text; `source` names it in messages and relative data paths resolve
// against the current folder. `task_state` is a checkpoint's saved task state (tasks::Task::state):
// a file task then keeps the saved vocabulary and does not read its data files yet.
Config parse_config(const std::string& text, const std::string& source,
                    const std::vector<std::string>& overrides = {},
                    const std::string& task_state = "");

// The resolved config as YAML, every value written (defaults included); reading it back
// gives the same Config.
std::string to_yaml(const Config& config);

// The optimizer the optim section describes, over `params` (weight decay on linear
// weights only, unless decay_embeddings), with its schedule (total_steps = train_steps).
// Clipping is the trainer's (clip_norm / clip_value).
std::unique_ptr<optim::Optimizer> make_optimizer(const OptimConfig& config,
                                                 std::size_t train_steps,
                                                 const std::vector<core::NamedParameter>& params);

const char* loss_on_name(tasks::LossOn loss_on);  // "answer", "all"

}  // namespace qkv::train
