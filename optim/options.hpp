// OptimizerOptions: the one options type of every optimizer (SGD, Adam, AdamW), with the
// one set of defaults and one check of their ranges.
//
// The defaults are the config's (an `optim:` section with no keys): AdamW, lr 1e-3,
// betas 0.9/0.999, eps 1e-8, no weight decay, no clipping, a constant schedule. Runs and
// their results depend on them, so they change only with a note in the README.
//
// Which fields a type uses: sgd reads momentum, dampening and nesterov; adam and adamw
// read betas and eps. A field of another type must stay at its default (a value set there
// would be silently ignored). clip_norm and clip_value are the trainer's (optim/clip.hpp);
// the optimizers only check them.
//
//   OptimizerOptions options;                 // adamw, lr 1e-3
//   options.lr = 3e-4;
//   options.betas = {0.9, 0.95};
//   options.weight_decay = 0.1;
//   options.schedule.type = ScheduleType::cosine;
//   options.schedule.total_steps = 5000;
//   check_optimizer_options(options);         // what every optimizer's constructor does
//   auto optimizer = make_optimizer(options, model.named_parameters());  // optim/factory.hpp
//
// In a config, the `optim:` section holds the same fields (dampening is code-only; the
// schedule's total_steps is the run's train.steps):
//
//   optim: {type: sgd, lr: 0.1, momentum: 0.9, schedule: {type: step, step_size: 500}}
//
//   OptimizerOptions options = read_optimizer_options(root.child("optim"), train_steps);
//   write_optimizer_options(options, writer.child("optim"));  // reads back to `options`
#pragma once

#include <array>
#include <cstddef>
#include <string>
#include <vector>

#include "optim/schedule.hpp"
#include "strict_yaml/config_node.hpp"
#include "strict_yaml/config_writer.hpp"

namespace qkv::optim {

struct OptimizerOptions {
  std::string type = "adamw";  // sgd | adam | adamw (see optimizer_types())
  double lr = 1e-3;            // > 0, finite
  // adam, adamw
  std::array<double, 2> betas = {0.9, 0.999};  // each in [0, 1)
  double eps = 1e-8;                           // > 0, finite
  // sgd
  double momentum = 0.0;   // [0, 1)
  double dampening = 0.0;  // [0, 1]
  bool nesterov = false;   // needs momentum > 0 and dampening 0
  // every type; weight decay on linear weights only (see split_decay_groups)
  double weight_decay = 0.0;  // >= 0, finite: L2 for sgd and adam, decoupled for adamw
  bool decay_embeddings = false;
  double clip_norm = 0.0;   // >= 0: clip the global gradient norm to this; 0: off
  double clip_value = 0.0;  // >= 0: clip each gradient element to [-v, v]; 0: off
  // Its base rate is lr. The warm-up must fit in total_steps (the run's length).
  ScheduleOptions schedule;
};

// "sgd", "adam", "adamw".
const std::vector<std::string>& optimizer_types();

// Throws std::invalid_argument for an unknown type (listing the known ones) or the first
// option out of range, e.g. "adam: option betas = [1, 0.999] is out of range; expected
// values in [0, 1)", or a field of another type away from its default ("adamw: option
// momentum = 0.9 is out of range; expected 0 (momentum applies to sgd only)").
void check_optimizer_options(const OptimizerOptions& options);

// The `optim:` section: type (default adamw), lr, then momentum and nesterov for sgd or
// betas ([beta1, beta2]) and eps for adam and adamw, weight_decay, decay_embeddings,
// clip_norm, clip_value, and `schedule:` {type (default constant), warmup_steps, min_lr
// for cosine, step_size (required) and gamma for step}; schedule.total_steps is
// `total_steps`. A key of another type is a ConfigError saying where it belongs
// ("optim.betas: applies to adam, adamw only; optim.type is sgd"); a value out of range
// is one at its key's file and line ("optim.lr: expected a positive learning rate, found
// -0.1"), with the same rules as check_optimizer_options.
OptimizerOptions read_optimizer_options(const qkv::ConfigNode& node, std::size_t total_steps);

// Every key read_optimizer_options reads for options.type, defaults included, with
// numbers in their shortest exact form and betas as a flow sequence.
void write_optimizer_options(const OptimizerOptions& options, qkv::ConfigWriter& out);

}  // namespace qkv::optim
