// Adam and AdamW, exactly as torch.optim.Adam / torch.optim.AdamW (PyTorch 1.13) define
// them. Per element, with g the gradient and t the parameter's update count:
//   Adam:  g = g + weight_decay * p          (L2 penalty folded into the gradient)
//   AdamW: p = p * (1 - lr * weight_decay)   (decoupled decay, before the update)
//   m = beta1 * m + (1 - beta1) * g
//   v = beta2 * v + (1 - beta2) * g * g
//   denom = sqrt(v) / sqrt(1 - beta2^t) + eps      (eps outside the bias correction)
//   p = p - lr / (1 - beta1^t) * m / denom
// State buffers: "exp_avg" (m) and "exp_avg_sq" (v).
//
//   OptimizerOptions options;        // optim/options.hpp
//   options.lr = 3e-4;
//   options.betas = {0.9, 0.95};
//   options.weight_decay = 0.1;
//   AdamW optimizer(split_decay_groups(model.named_parameters()), options);
//   optimizer.step();
#pragma once

#include <vector>

#include "optim/optimizer.hpp"
#include "optim/options.hpp"

namespace qkv::optim {

class Adam : public Optimizer {
 public:
  // All parameters in one group with the options' lr and weight decay (L2, added to the
  // gradient). The options are taken as type adam (options.type is not read) and checked
  // (check_optimizer_options: momentum, dampening and nesterov must keep their defaults);
  // their schedule is the optimizer's.
  Adam(const std::vector<core::NamedParameter>& params, const OptimizerOptions& options = {});
  Adam(std::vector<ParamGroup> groups, const OptimizerOptions& options = {});

  const OptimizerOptions& options() const { return options_; }  // type "adam"

 protected:
  void update(const UpdateSpan& span, double lr, double weight_decay) override;

 private:
  OptimizerOptions options_;
};

class AdamW : public Optimizer {
 public:
  // As Adam, with decoupled weight decay; the options are taken as type adamw.
  AdamW(const std::vector<core::NamedParameter>& params, const OptimizerOptions& options = {});
  AdamW(std::vector<ParamGroup> groups, const OptimizerOptions& options = {});

  const OptimizerOptions& options() const { return options_; }  // type "adamw"

 protected:
  void update(const UpdateSpan& span, double lr, double weight_decay) override;

 private:
  OptimizerOptions options_;
};

}  // namespace qkv::optim
