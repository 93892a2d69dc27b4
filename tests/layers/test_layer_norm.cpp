// LayerNorm: init (ones, zeros), normalized output, eps, and gradients through the layer.
#include <doctest/doctest.h>

#include <cmath>

#include "core/ops.hpp"
#include "layers/layer_norm.hpp"
#include "layer_test_util.hpp"

using namespace qkv;
using namespace qkv::layers;
using core::DType;
using core::Tensor;

TEST_CASE("layer_norm: starts as a plain normalization over the last axis") {
  LayerNorm ln(8);
  CHECK(ln.parameter_count() == 16);
  CHECK(ln.eps() == 1e-5);
  const auto params = ln.named_parameters();
  CHECK(params[0].name == "weight");
  CHECK(params[0].tensor.to_vector() == std::vector<double>(8, 1.0));
  CHECK(params[1].name == "bias");
  CHECK(params[1].tensor.to_vector() == std::vector<double>(8, 0.0));
  CHECK(params[0].kind == ParamKind::norm);

  ln.to(DType::f64);
  const Tensor x = test::random_input({3, 2, 8}, 1, DType::f64);
  const std::vector<double> y = ln.forward(x).to_vector(), v = x.to_vector();
  for (std::size_t row = 0; row < 6; ++row) {
    double mean = 0, var = 0;
    for (std::size_t c = 0; c < 8; ++c) mean += v[row * 8 + c] / 8;
    for (std::size_t c = 0; c < 8; ++c) var += (v[row * 8 + c] - mean) * (v[row * 8 + c] - mean) / 8;
    for (std::size_t c = 0; c < 8; ++c) {
      CHECK(y[row * 8 + c] == doctest::Approx((v[row * 8 + c] - mean) / std::sqrt(var + 1e-5)));
    }
  }
}

TEST_CASE("layer_norm: gradients match finite differences") {
  LayerNorm ln(5);
  ln.to(DType::f64);
  core::Rng rng(2);
  for (auto& p : ln.parameters()) p.copy_(Tensor::randn(p.shape(), rng, DType::f64));
  std::vector<Tensor> inputs = ln.parameters();
  inputs.push_back(test::random_input({2, 3, 5}, 3, DType::f64));
  test::check_gradients("LayerNorm", [&](const std::vector<Tensor>& in) { return ln.forward(in[2]); },
                        inputs);
}
