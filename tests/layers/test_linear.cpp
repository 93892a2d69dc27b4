// Linear: shape, parameters, PyTorch's init bounds, the value x Wᵀ + b, and gradients.
#include <doctest/doctest.h>

#include <cmath>

#include "core/ops.hpp"
#include "layers/linear.hpp"
#include "layer_test_util.hpp"

using namespace qkv;
using namespace qkv::layers;
using core::DType;
using core::Tensor;

TEST_CASE("linear: shapes, parameter names and count") {
  core::Rng rng(1);
  Linear with_bias(5, 3, rng);
  CHECK(with_bias.forward(test::random_input({2, 4, 5}, 2)).shape() == core::Shape{2, 4, 3});
  CHECK(with_bias.forward(test::random_input({7, 5}, 2)).shape() == core::Shape{7, 3});
  CHECK(with_bias.parameter_count() == 5 * 3 + 3);
  const auto params = with_bias.named_parameters();
  REQUIRE(params.size() == 2);
  CHECK(params[0].name == "weight");
  CHECK(params[0].tensor.shape() == core::Shape{3, 5});
  CHECK(params[1].name == "bias");
  CHECK(params[1].kind == ParamKind::bias);

  Linear no_bias(5, 3, rng, false);
  CHECK(no_bias.parameter_count() == 15);
  CHECK_FALSE(no_bias.bias().defined());
  CHECK_THROWS_WITH_AS(Linear(0, 3, rng), doctest::Contains("must be positive; got 0 and 3"),
                       std::invalid_argument);
}

TEST_CASE("linear: init is U(-1/sqrt(in), 1/sqrt(in)) and a seed fixes it") {
  core::Rng rng(3), same(3);
  Linear a(16, 64, rng), b(16, 64, same);
  CHECK(a.weight().to_vector() == b.weight().to_vector());
  CHECK(a.bias().to_vector() == b.bias().to_vector());
  const double bound = 1.0 / std::sqrt(16.0);
  CHECK(test::max_abs(a.weight()) <= bound);
  CHECK(test::max_abs(a.bias()) <= bound);
  CHECK(test::max_abs(a.weight()) > 0.9 * bound);  // spread over the range, not clustered
}

TEST_CASE("linear: forward computes x Wᵀ + b") {
  core::Rng rng(4);
  Linear layer(2, 2, rng);
  layer.load_state({{"weight", Tensor::from_vector(std::vector<float>{1, 2, 3, 4}, {2, 2})},
                    {"bias", Tensor::from_vector(std::vector<float>{0.5f, -1}, {2})}});
  const Tensor y = layer.forward(Tensor::from_vector(std::vector<float>{1, 1, 2, -1}, {2, 2}));
  CHECK(y.to_vector() == std::vector<double>{3.5, 6, 0.5, 1});
}

TEST_CASE("linear: gradients match finite differences") {
  core::Rng rng(5);
  Linear layer(4, 3, rng);
  layer.to(DType::f64);
  std::vector<Tensor> inputs = layer.parameters();
  inputs.push_back(test::random_input({2, 3, 4}, 6, DType::f64));
  test::check_gradients("Linear", [&](const std::vector<Tensor>& in) { return layer.forward(in[2]); },
                        inputs);
}
