// make_optimizer: the optimizer an OptimizerOptions describes (its type, parameter groups
// and schedule), e.g. for the trainer's `optim:` section:
//
//   optim: {type: adamw, lr: 3e-4, betas: [0.9, 0.95], weight_decay: 0.1, clip_norm: 1.0,
//           schedule: {type: cosine, warmup_steps: 100, min_lr: 1e-5}}
//
//   OptimizerOptions options = read_optimizer_options(root.child("optim"), train_steps);
//   auto optimizer = make_optimizer(options, model.named_parameters());
//   ...
//   clip_grad_norm(params, options.clip_norm);  // clipping is the trainer's (optim/clip.hpp)
//
// Parameters are grouped by split_decay_groups (weight decay on ParamKind::weight only,
// and on embeddings if decay_embeddings). The schedule's base rate is options.lr.
#pragma once

#include <memory>
#include <vector>

#include "core/parameter.hpp"
#include "optim/optimizer.hpp"
#include "optim/options.hpp"

namespace qkv::optim {

// Throws std::invalid_argument for an unknown options.type (listing the known ones) or an
// option out of range (check_optimizer_options).
std::unique_ptr<Optimizer> make_optimizer(const OptimizerOptions& options,
                                          const std::vector<core::NamedParameter>& params);

}  // namespace qkv::optim
