// End to end through the autograd: SGD and Adam fit a small linear regression
// y = x Wᵀ + b (float32) to a low loss.
#include <doctest/doctest.h>

#include <memory>
#include <vector>

#include "core/ops.hpp"
#include "core/parameter.hpp"
#include "core/random.hpp"
#include "core/tensor.hpp"
#include "optim/adam.hpp"
#include "optim/sgd.hpp"

using namespace qkv::optim;
using namespace qkv::core;

namespace {

struct Regression {
  Tensor x;  // (N, 3)
  Tensor y;  // (N, 2)
  std::vector<NamedParameter> params;

  Tensor loss() const {  // mean squared error
    Tensor diff = sub(linear(x, params[0].tensor, params[1].tensor), y);
    return mean(mul(diff, diff));
  }
};

Regression make_regression() {
  Rng rng(2024);
  Regression r;
  r.x = Tensor::randn({64, 3}, rng);
  const Tensor w_true = Tensor::from_vector(std::vector<float>{1.5f, -2.0f, 0.5f,  //
                                                               0.3f, 0.8f, -1.2f},
                                            {2, 3});
  const Tensor b_true = Tensor::from_vector(std::vector<float>{0.7f, -0.4f}, {2});
  {
    NoGrad no_grad;
    r.y = linear(r.x, w_true, b_true);
  }
  r.params = {{"fc.weight", (Tensor::randn({2, 3}, rng) * 0.1).detach().requires_grad_(),
               ParamKind::weight},
              {"fc.bias", Tensor::zeros({2}).requires_grad_(), ParamKind::bias}};
  return r;
}

double train(Regression& r, Optimizer& optimizer, int steps) {
  for (int step = 0; step < steps; ++step) {
    optimizer.zero_grad();
    r.loss().backward();
    optimizer.step();
  }
  NoGrad no_grad;
  return r.loss().item();
}

}  // namespace

TEST_CASE("sgd: fits a linear regression through the autograd") {
  Regression r = make_regression();
  const double initial = r.loss().item();
  OptimizerOptions options;
  options.lr = 0.1;
  options.momentum = 0.9;
  SGD optimizer(r.params, options);
  const double final_loss = train(r, optimizer, 200);
  CAPTURE(initial);
  CHECK(initial > 1.0);
  CHECK(final_loss < 1e-6);
}

TEST_CASE("adam: fits a linear regression through the autograd") {
  Regression r = make_regression();
  const double initial = r.loss().item();
  OptimizerOptions options;
  options.lr = 0.05;
  options.schedule.type = ScheduleType::cosine;
  options.schedule.total_steps = 300;
  options.schedule.min_lr = 1e-4;
  Adam optimizer(r.params, options);
  const double final_loss = train(r, optimizer, 300);
  CAPTURE(initial);
  CHECK(initial > 1.0);
  CHECK(final_loss < 1e-6);
}
