// SGD with momentum, dampening, Nesterov momentum and L2 weight decay, exactly as
// torch.optim.SGD (PyTorch 1.13) defines them. Per element, with g the gradient:
//   g = g + weight_decay * p
//   if momentum != 0:
//     b = g                                   on a parameter's first update
//     b = momentum * b + (1 - dampening) * g  afterwards
//     g = nesterov ? g + momentum * b : b
//   p = p - lr * g
//
//   SGD optimizer(model.named_parameters(), SGDOptions{0.1, 0.9});  // lr, momentum
//   optimizer.step();
#pragma once

#include <vector>

#include "optim/optimizer.hpp"

namespace qkv::optim {

struct SGDOptions {
  double lr = 0.01;           // >= 0
  double momentum = 0.0;      // [0, 1)
  double dampening = 0.0;     // [0, 1]
  double weight_decay = 0.0;  // >= 0
  bool nesterov = false;      // needs momentum > 0 and dampening == 0
};

class SGD : public Optimizer {
 public:
  // All parameters in one group with the options' lr and weight decay.
  SGD(const std::vector<core::NamedParameter>& params, const SGDOptions& options = {});
  SGD(std::vector<ParamGroup> groups, const SGDOptions& options = {});

  const SGDOptions& options() const { return options_; }

 protected:
  void update(ParamSlot& slot, double lr, double weight_decay) override;

 private:
  SGDOptions options_;
};

}  // namespace qkv::optim
