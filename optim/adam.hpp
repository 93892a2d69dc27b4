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
//   AdamW optimizer(split_decay_groups(model.named_parameters()),
//                   AdamWOptions{3e-4, 0.9, 0.95, 1e-8, 0.1});
//   optimizer.step();
#pragma once

#include <vector>

#include "optim/optimizer.hpp"

namespace qkv::optim {

struct AdamOptions {
  double lr = 1e-3;           // >= 0
  double beta1 = 0.9;         // [0, 1)
  double beta2 = 0.999;       // [0, 1)
  double eps = 1e-8;          // >= 0
  double weight_decay = 0.0;  // >= 0, L2 (added to the gradient)
};

struct AdamWOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 1e-2;  // >= 0, decoupled (PyTorch's default)
};

class Adam : public Optimizer {
 public:
  // All parameters in one group with the options' lr and weight decay.
  Adam(const std::vector<core::NamedParameter>& params, const AdamOptions& options = {});
  Adam(std::vector<ParamGroup> groups, const AdamOptions& options = {});

  const AdamOptions& options() const { return options_; }

 protected:
  void update(ParamSlot& slot, double lr, double weight_decay) override;

 private:
  AdamOptions options_;
};

class AdamW : public Optimizer {
 public:
  AdamW(const std::vector<core::NamedParameter>& params, const AdamWOptions& options = {});
  AdamW(std::vector<ParamGroup> groups, const AdamWOptions& options = {});

  const AdamWOptions& options() const { return options_; }

 protected:
  void update(ParamSlot& slot, double lr, double weight_decay) override;

 private:
  AdamWOptions options_;
};

}  // namespace qkv::optim
