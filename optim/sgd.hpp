// SGD with momentum, dampening, Nesterov momentum and L2 weight decay, exactly as
// torch.optim.SGD (PyTorch 1.13) defines them. Per element, with g the gradient:
//   g = g + weight_decay * p
//   if momentum != 0:
//     b = g                                   on a parameter's first update
//     b = momentum * b + (1 - dampening) * g  afterwards
//     g = nesterov ? g + momentum * b : b
//   p = p - lr * g
//
//   OptimizerOptions options;
//   options.lr = 0.1;
//   options.momentum = 0.9;
//   SGD optimizer(model.named_parameters(), options);
//   optimizer.step();
#pragma once

#include <vector>

#include "optim/optimizer.hpp"
#include "optim/options.hpp"

namespace qkv::optim {

class SGD : public Optimizer {
 public:
  // All parameters in one group with the options' lr and weight decay. The options are
  // taken as type sgd (options.type is not read) and checked (check_optimizer_options:
  // betas and eps must keep their defaults); their schedule is the optimizer's.
  SGD(const std::vector<core::NamedParameter>& params, const OptimizerOptions& options = {});
  SGD(std::vector<ParamGroup> groups, const OptimizerOptions& options = {});

  const OptimizerOptions& options() const { return options_; }  // type "sgd"

 protected:
  void update(const UpdateSpan& span, double lr, double weight_decay) override;

 private:
  OptimizerOptions options_;
};

}  // namespace qkv::optim
