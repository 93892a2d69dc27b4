// Gradient clipping by global norm and by value.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <stdexcept>
#include <vector>

#include "core/parameter.hpp"
#include "core/random.hpp"
#include "core/tensor.hpp"
#include "optim/clip.hpp"

using namespace qkv::optim;
using qkv::core::DType;
using qkv::core::NamedParameter;
using qkv::core::Rng;
using qkv::core::Tensor;

namespace {

// Parameters whose gradients are random normals (scaled), plus one without a gradient.
std::vector<NamedParameter> params_with_grads(DType dtype, double scale) {
  Rng rng(7);
  std::vector<NamedParameter> params;
  for (auto shape : {qkv::core::Shape{3, 4}, qkv::core::Shape{5}}) {
    Tensor p = Tensor::randn(shape, rng, dtype).requires_grad_();
    Tensor g = Tensor::randn(shape, rng, DType::f64);
    for (std::size_t i = 0; i < p.numel(); ++i) {
      const double value = scale * g.data<double>()[i];
      if (dtype == DType::f32) {
        p.grad_buffer<float>()[i] = static_cast<float>(value);
      } else {
        p.grad_buffer<double>()[i] = value;
      }
    }
    params.push_back({"p" + std::to_string(params.size()), p});
  }
  params.push_back({"unused", Tensor::zeros({2}, dtype).requires_grad_()});
  return params;
}

std::vector<double> all_grads(const std::vector<NamedParameter>& params) {
  std::vector<double> values;
  for (const NamedParameter& p : params) {
    if (!p.tensor.grad().defined()) continue;
    for (double v : p.tensor.grad().to_vector()) values.push_back(v);
  }
  return values;
}

double norm_of(const std::vector<double>& values) {
  double sum = 0.0;
  for (double v : values) sum += v * v;
  return std::sqrt(sum);
}

}  // namespace

TEST_CASE("clip_grad_norm: scales to max_norm, keeps the direction, returns the norm") {
  for (DType dtype : {DType::f64, DType::f32}) {
    CAPTURE(qkv::core::dtype_name(dtype));
    std::vector<NamedParameter> params = params_with_grads(dtype, 3.0);
    const std::vector<double> before = all_grads(params);
    const double norm_before = norm_of(before);
    REQUIRE(norm_before > 2.0);

    const double returned = clip_grad_norm(params, 2.0);
    const std::vector<double> after = all_grads(params);
    const double tolerance = dtype == DType::f64 ? 1e-12 : 1e-6;
    CHECK(returned == doctest::Approx(norm_before).epsilon(tolerance));
    CHECK(norm_of(after) == doctest::Approx(2.0).epsilon(1e-5));
    CHECK(grad_norm(params) == doctest::Approx(2.0).epsilon(1e-5));
    // Same direction: after = before * (2 / norm) elementwise.
    for (std::size_t i = 0; i < after.size(); ++i) {
      CHECK(after[i] == doctest::Approx(before[i] * 2.0 / norm_before).epsilon(1e-5));
    }
    CHECK_FALSE(params.back().tensor.grad().defined());
  }
}

TEST_CASE("clip_grad_norm: a norm below max_norm changes nothing") {
  std::vector<NamedParameter> params = params_with_grads(DType::f64, 0.01);
  const std::vector<double> before = all_grads(params);
  const double returned = clip_grad_norm(params, 1.0);
  CHECK(returned == doctest::Approx(norm_of(before)));
  CHECK(all_grads(params) == before);
}

TEST_CASE("clip_grad_norm: a non-finite norm is returned and nothing is scaled") {
  std::vector<NamedParameter> params = params_with_grads(DType::f32, 1.0);
  params[1].tensor.grad_buffer<float>()[2] = std::numeric_limits<float>::infinity();
  const std::vector<double> before = all_grads(params);
  const double returned = clip_grad_norm(params, 1.0);
  CHECK(std::isinf(returned));
  CHECK(all_grads(params) == before);
  params[1].tensor.grad_buffer<float>()[2] = std::numeric_limits<float>::quiet_NaN();
  CHECK(std::isnan(clip_grad_norm(params, 1.0)));
}

TEST_CASE("clip_grad_value: clamps every element") {
  std::vector<NamedParameter> params = params_with_grads(DType::f32, 2.0);
  const std::vector<double> before = all_grads(params);
  clip_grad_value(params, 0.5);
  const std::vector<double> after = all_grads(params);
  bool some_clamped = false;
  for (std::size_t i = 0; i < after.size(); ++i) {
    const double expected = std::max(-0.5, std::min(0.5, before[i]));
    CHECK(after[i] == doctest::Approx(expected));
    some_clamped = some_clamped || std::abs(before[i]) > 0.5;
  }
  CHECK(some_clamped);
}

TEST_CASE("clip: bad limits name the option") {
  std::vector<NamedParameter> params = params_with_grads(DType::f32, 1.0);
  CHECK_THROWS_WITH_AS(clip_grad_norm(params, 0.0),
                       doctest::Contains("clip_grad_norm: option max_norm = 0 is out of range; "
                                         "expected a finite value > 0"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(clip_grad_value(params, -1.0),
                       doctest::Contains("clip_grad_value: option clip_value = -1"),
                       std::invalid_argument);
}
