// make_optimizer: builds an optimizer, its parameter groups and its schedule from one
// plain options struct, for the trainer's config (`optim:` section):
//
//   optim: {type: adamw, lr: 3e-4, betas: [0.9, 0.95], weight_decay: 0.1, clip_norm: 1.0,
//           schedule: {type: cosine, warmup_steps: 100, min_lr: 1e-5}}
//
// maps to
//
//   OptimizerOptions options;
//   options.lr = 3e-4;
//   options.beta1 = 0.9;
//   options.beta2 = 0.95;
//   options.weight_decay = 0.1;
//   options.schedule.type = schedule_type_from_name("cosine");
//   options.schedule.warmup_steps = 100;
//   options.schedule.min_lr = 1e-5;
//   options.schedule.total_steps = train_steps;  // cosine needs the run's length
//   auto optimizer = make_optimizer("adamw", model.named_parameters(), options);
//   ...
//   clip_grad_norm(params, 1.0);  // clip_norm is applied by the trainer (optim/clip.hpp)
//
// Parameters are grouped by split_decay_groups (weight decay on ParamKind::weight only,
// and on embeddings if decay_embeddings). The schedule's base rate is options.lr.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/parameter.hpp"
#include "optim/optimizer.hpp"
#include "optim/schedule.hpp"

namespace qkv::optim {

struct OptimizerOptions {
  double lr = 1e-3;
  double weight_decay = 0.0;
  bool decay_embeddings = false;
  // sgd only
  double momentum = 0.0;
  double dampening = 0.0;
  bool nesterov = false;
  // adam and adamw only
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  ScheduleOptions schedule;
};

// The known optimizer types: "sgd", "adam", "adamw".
const std::vector<std::string>& optimizer_types();

// Throws std::invalid_argument for an unknown type (listing the known ones), an option
// out of range, or an option that the type does not use set away from its default
// (momentum for adam, betas for sgd, ...).
std::unique_ptr<Optimizer> make_optimizer(const std::string& type,
                                          const std::vector<core::NamedParameter>& params,
                                          const OptimizerOptions& options);

}  // namespace qkv::optim
