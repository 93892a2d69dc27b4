// Optimizer state export/import: exact resume, and clear errors for a state that does
// not fit.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <memory>
#include <stdexcept>
#include <vector>

#include "core/parameter.hpp"
#include "core/random.hpp"
#include "core/tensor.hpp"
#include "optim/adam.hpp"
#include "optim/factory.hpp"
#include "optim/sgd.hpp"

using namespace qkv::optim;
using qkv::core::DType;
using qkv::core::NamedParameter;
using qkv::core::ParamKind;
using qkv::core::Rng;
using qkv::core::Tensor;

namespace {

// float32 parameters of a small "model"; "head.bias" gets no gradient on odd steps so
// that per-parameter update counts differ from the global step count.
std::vector<NamedParameter> make_params(std::uint64_t seed) {
  Rng rng(seed);
  return {{"blocks.0.attn.wq.weight", Tensor::randn({4, 3}, rng).requires_grad_(), ParamKind::weight},
          {"head.bias", Tensor::randn({3}, rng).requires_grad_(), ParamKind::bias},
          {"ln.weight", Tensor::randn({3}, rng).requires_grad_(), ParamKind::norm}};
}

std::vector<NamedParameter> copy_params(const std::vector<NamedParameter>& params) {
  std::vector<NamedParameter> copies;
  for (const NamedParameter& p : params) {
    copies.push_back({p.name, p.tensor.clone().requires_grad_(), p.kind});
  }
  return copies;
}

// Gradients that depend on the values (g = p^3 - sin(i)), so trajectories that differ
// anywhere keep differing.
void set_grads(const std::vector<NamedParameter>& params, std::size_t step) {
  for (const NamedParameter& p : params) {
    Tensor t = p.tensor;
    t.zero_grad();
    if (p.name == "head.bias" && step % 2 == 1) continue;
    const float* value = t.data<float>();
    float* grad = t.grad_buffer<float>();
    for (std::size_t i = 0; i < t.numel(); ++i) {
      grad[i] = value[i] * value[i] * value[i] - static_cast<float>(std::sin(double(i + step)));
    }
  }
}

using Factory = std::function<std::unique_ptr<Optimizer>(const std::vector<NamedParameter>&)>;

void check_bitwise_equal(const std::vector<NamedParameter>& a,
                         const std::vector<NamedParameter>& b) {
  REQUIRE(a.size() == b.size());
  for (std::size_t k = 0; k < a.size(); ++k) {
    CAPTURE(a[k].name);
    REQUIRE(a[k].tensor.numel() == b[k].tensor.numel());
    CHECK(std::memcmp(a[k].tensor.data<float>(), b[k].tensor.data<float>(),
                      a[k].tensor.numel() * sizeof(float)) == 0);
  }
}

void check_resume_is_exact(const Factory& make) {
  std::vector<NamedParameter> params = make_params(11);
  std::unique_ptr<Optimizer> uninterrupted = make(params);
  for (std::size_t step = 0; step < 3; ++step) {
    set_grads(params, step);
    uninterrupted->step();
  }
  // A "checkpoint": parameter values and optimizer state at step 3.
  std::vector<NamedParameter> resumed_params = copy_params(params);
  const OptimizerState state = uninterrupted->export_state();
  for (std::size_t step = 3; step < 7; ++step) {
    set_grads(params, step);
    uninterrupted->step();
  }
  // The export is a copy: stepping on did not change it.
  std::unique_ptr<Optimizer> resumed = make(resumed_params);
  resumed->import_state(state);
  CHECK(resumed->step_count() == 3);
  for (std::size_t step = 3; step < 7; ++step) {
    set_grads(resumed_params, step);
    resumed->step();
  }
  check_bitwise_equal(params, resumed_params);
  // The schedule position travelled with the state.
  CHECK(resumed->lr() == uninterrupted->lr());
}

OptimizerOptions sgd_options(double lr, double momentum) {
  OptimizerOptions options;
  options.lr = lr;
  options.momentum = momentum;
  return options;
}

ScheduleOptions cosine_schedule() {
  ScheduleOptions s;
  s.type = ScheduleType::cosine;
  s.warmup_steps = 2;
  s.total_steps = 8;
  s.min_lr = 1e-3;
  return s;
}

}  // namespace

TEST_CASE("optimizer state: export, import, step equals uninterrupted stepping bit for bit") {
  SUBCASE("sgd with nesterov momentum and weight decay") {
    check_resume_is_exact([](const std::vector<NamedParameter>& p) {
      OptimizerOptions options = sgd_options(0.05, 0.9);
      options.weight_decay = 0.01;
      options.nesterov = true;
      auto o = std::make_unique<SGD>(p, options);
      o->set_schedule(Schedule(cosine_schedule(), 0.05));
      return std::unique_ptr<Optimizer>(std::move(o));
    });
  }
  SUBCASE("adam") {
    check_resume_is_exact([](const std::vector<NamedParameter>& p) {
      OptimizerOptions options;
      options.lr = 0.01;
      options.betas = {0.9, 0.99};
      options.weight_decay = 0.01;
      auto o = std::make_unique<Adam>(p, options);
      o->set_schedule(Schedule(cosine_schedule(), 0.01));
      return std::unique_ptr<Optimizer>(std::move(o));
    });
  }
  SUBCASE("adamw from the factory, with decay groups and a schedule") {
    check_resume_is_exact([](const std::vector<NamedParameter>& p) {
      OptimizerOptions options;
      options.type = "adamw";
      options.lr = 0.01;
      options.betas = {0.9, 0.95};
      options.weight_decay = 0.1;
      options.schedule = cosine_schedule();
      return make_optimizer(options, p);
    });
  }
}

TEST_CASE("optimizer state: keys are parameter names") {
  std::vector<NamedParameter> params = make_params(3);
  Adam adam(params);
  set_grads(params, 1);  // head.bias gets no gradient on odd steps
  adam.step();
  const OptimizerState state = adam.export_state();
  CHECK(state.tensors.size() == 6);
  CHECK(state.tensors.count("blocks.0.attn.wq.weight.exp_avg") == 1);
  CHECK(state.tensors.count("ln.weight.exp_avg_sq") == 1);
  CHECK(state.scalars.at("step") == 1.0);
  CHECK(state.scalars.at("blocks.0.attn.wq.weight.step") == 1.0);
  CHECK(state.scalars.at("head.bias.step") == 0.0);
  CHECK(state.tensors.at("head.bias.exp_avg").dtype() == DType::f32);

  SGD plain(params, sgd_options(0.1, 0.0));
  CHECK(plain.export_state().tensors.empty());  // no momentum, no buffers
  SGD momentum(params, sgd_options(0.1, 0.9));
  CHECK(momentum.export_state().tensors.count("head.bias.momentum_buffer") == 1);
}

TEST_CASE("optimizer state: a state that does not fit is refused by name") {
  std::vector<NamedParameter> params = make_params(5);
  Adam adam(params);
  const OptimizerState good = adam.export_state();

  SUBCASE("missing tensor") {
    OptimizerState state = good;
    state.tensors.erase("head.bias.exp_avg_sq");
    CHECK_THROWS_WITH_AS(adam.import_state(state),
                         doctest::Contains("adam optimizer state is missing tensor "
                                           "'head.bias.exp_avg_sq'"),
                         std::invalid_argument);
  }
  SUBCASE("unknown tensor") {
    OptimizerState state = good;
    state.tensors["blocks.9.mlp.weight.exp_avg"] = Tensor::zeros({2});
    CHECK_THROWS_WITH_AS(adam.import_state(state),
                         doctest::Contains("adam optimizer state has unknown tensor "
                                           "'blocks.9.mlp.weight.exp_avg'"),
                         std::invalid_argument);
  }
  SUBCASE("shape mismatch") {
    OptimizerState state = good;
    state.tensors["blocks.0.attn.wq.weight.exp_avg"] = Tensor::zeros({4, 4});
    CHECK_THROWS_WITH_AS(adam.import_state(state),
                         doctest::Contains("adam optimizer state tensor "
                                           "'blocks.0.attn.wq.weight.exp_avg' has shape [4, 4]; "
                                           "parameter 'blocks.0.attn.wq.weight' expects [4, 3]"),
                         std::invalid_argument);
  }
  SUBCASE("missing and unknown scalars") {
    OptimizerState state = good;
    state.scalars.erase("ln.weight.step");
    CHECK_THROWS_WITH_AS(adam.import_state(state),
                         doctest::Contains("missing scalar 'ln.weight.step'"),
                         std::invalid_argument);
    state = good;
    state.scalars["lr"] = 0.1;
    CHECK_THROWS_WITH_AS(adam.import_state(state), doctest::Contains("unknown scalar 'lr'"),
                         std::invalid_argument);
    state = good;
    state.scalars["step"] = 2.5;
    CHECK_THROWS_WITH_AS(adam.import_state(state),
                         doctest::Contains("state scalar 'step' = 2.5 is not a step count"),
                         std::invalid_argument);
  }
  SUBCASE("state of another optimizer type") {
    SGD sgd(params, sgd_options(0.1, 0.9));
    CHECK_THROWS_WITH_AS(adam.import_state(sgd.export_state()),
                         doctest::Contains("was the state saved for another optimizer type or "
                                           "model?"),
                         std::invalid_argument);
  }
  SUBCASE("a refused state changes nothing") {
    set_grads(params, 0);
    adam.step();
    OptimizerState state = adam.export_state();
    OptimizerState bad = good;
    bad.tensors.erase("ln.weight.exp_avg");
    CHECK_THROWS_AS(adam.import_state(bad), std::invalid_argument);
    CHECK(adam.step_count() == 1);
    const OptimizerState after = adam.export_state();
    CHECK(after.scalars == state.scalars);
    CHECK(after.tensors.at("ln.weight.exp_avg").to_vector() ==
          state.tensors.at("ln.weight.exp_avg").to_vector());
  }
}
