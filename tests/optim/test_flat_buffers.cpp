// The optimizer's flat buffers: parameters keep their values and identity when packed,
// flat_gradients() is every gradient in parameter order, a packed (fused) step equals
// stepping each parameter on its own, and a parameter moved out of the buffer (convert_)
// is still updated.
#include <doctest/doctest.h>

#include <vector>

#include "core/ops.hpp"
#include "core/parameter.hpp"
#include "core/random.hpp"
#include "optim/adam.hpp"

using namespace qkv;
using core::NamedParameter;
using core::Tensor;

namespace {

std::vector<NamedParameter> make_params(std::uint64_t seed) {
  core::Rng rng(seed);
  return {{"w", Tensor::randn({3, 4}, rng).requires_grad_(), core::ParamKind::weight},
          {"b", Tensor::randn({4}, rng).requires_grad_(), core::ParamKind::bias},
          {"v", Tensor::randn({2, 2}, rng).requires_grad_(), core::ParamKind::weight}};
}

// A loss that reaches every parameter: Σ (w² ⊙ 1) + Σ b³ + Σ v.
void backward(const std::vector<NamedParameter>& p) {
  const Tensor loss = core::add(core::add(core::sum(core::mul(p[0].tensor, p[0].tensor)),
                                          core::sum(core::pow(p[1].tensor, 3.0))),
                                core::sum(p[2].tensor));
  loss.backward();
}

std::vector<double> values(const std::vector<NamedParameter>& p) {
  std::vector<double> all;
  for (const auto& n : p) {
    const auto v = n.tensor.to_vector();
    all.insert(all.end(), v.begin(), v.end());
  }
  return all;
}

}  // namespace

TEST_CASE("flat buffers: packing keeps the values, and the gradients are one span") {
  auto params = make_params(1);
  const std::vector<double> before = values(params);
  optim::OptimizerOptions options;
  optim::AdamW optimizer(optim::split_decay_groups(params), options);
  CHECK(values(params) == before);
  const Tensor flat = optimizer.flat_gradients();
  REQUIRE(flat.defined());
  CHECK(flat.numel() == 12 + 4 + 4);
  backward(params);
  // Group order: the decayed weights (w, v), then b.
  std::vector<double> expected;
  for (std::size_t i : {0u, 2u, 1u}) {
    const auto g = params[i].tensor.grad().to_vector();
    expected.insert(expected.end(), g.begin(), g.end());
  }
  CHECK(flat.to_vector() == expected);
  CHECK(optimizer.flat_parameters().numel() == flat.numel());
}

TEST_CASE("flat buffers: a fused step equals a step per parameter, bit for bit") {
  auto packed = make_params(2);
  auto single = make_params(2);
  optim::OptimizerOptions options;
  options.weight_decay = 0.1;
  optim::AdamW fused(optim::split_decay_groups(packed), options);
  optim::AdamW one_by_one(optim::split_decay_groups(single), options);
  // Moving single's parameters out of the buffer makes its optimizer update each alone.
  for (auto& p : single) p.tensor.convert_(core::DType::f32 == p.tensor.dtype() ? core::DType::f64 : core::DType::f32);
  for (auto& p : single) p.tensor.convert_(core::DType::f32);
  for (int step = 0; step < 3; ++step) {
    fused.zero_grad();
    one_by_one.zero_grad();
    backward(packed);
    backward(single);
    fused.step();
    one_by_one.step();
  }
  CHECK(values(packed) == values(single));
}
