// Gradient checks (double, central differences) for every elementwise op, on equal shapes
// and on broadcasting edge cases: size-1 axes, missing leading axes, scalars.
#include <doctest/doctest.h>

#include <cmath>

#include "tests/core/gradcheck_util.hpp"

using namespace qkv::core;
using qkv::test::check_gradients;
using qkv::test::rand64;

namespace {

struct ShapePair {
  Shape a, b;
};

const std::vector<ShapePair> broadcast_cases = {
    {{3, 4}, {3, 4}}, {{3, 4}, {4}}, {{3, 4}, {3, 1}}, {{2, 1, 4}, {3, 1}},
    {{2, 3}, {}},     {{}, {2, 3}},  {{1}, {2, 3}},    {{2, 3, 4}, {1, 3, 1}},
};

}  // namespace

TEST_CASE("add, sub, mul, div: backward matches finite differences with broadcasting") {
  using Binary = Tensor (*)(const Tensor&, const Tensor&);
  const std::vector<std::pair<const char*, Binary>> ops = {
      {"add", add}, {"sub", sub}, {"mul", mul}, {"div", div}};
  for (const auto& [name, op] : ops) {
    for (const ShapePair& c : broadcast_cases) {
      CAPTURE(name);
      CAPTURE(shape_str(c.a));
      CAPTURE(shape_str(c.b));
      // Divisors kept away from zero.
      Tensor b = std::string(name) == "div" ? rand64(c.b, 2, 0.5, 2.0) : rand64(c.b, 2);
      check_gradients(name, [op = op](const std::vector<Tensor>& in) { return op(in[0], in[1]); },
                      {rand64(c.a, 1), b});
    }
  }
}

TEST_CASE("broadcasting: forward values and shape errors") {
  Tensor a = Tensor::from_vector(std::vector<float>{1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor row = Tensor::from_vector(std::vector<float>{10, 20, 30}, {3});
  Tensor col = Tensor::from_vector(std::vector<float>{100, 200}, {2, 1});
  CHECK(add(a, row).to_vector() == std::vector<double>{11, 22, 33, 14, 25, 36});
  CHECK(add(a, col).to_vector() == std::vector<double>{101, 102, 103, 204, 205, 206});
  CHECK(add(row, col).shape() == Shape{2, 3});
  CHECK_THROWS_WITH_AS(add(a, Tensor::zeros({2})),
                       doctest::Contains("add: shapes do not broadcast (shapes [2, 3] and [2])"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(mul(a, Tensor::zeros({3}, DType::f64)), doctest::Contains("mul: dtypes differ"),
                       std::invalid_argument);
}

TEST_CASE("unary ops and scalar ops: backward matches finite differences") {
  const std::vector<std::pair<const char*, std::function<Tensor(const Tensor&)>>> ops = {
      {"neg", [](const Tensor& x) { return neg(x); }},
      {"add scalar", [](const Tensor& x) { return add(x, 0.7); }},
      {"mul scalar", [](const Tensor& x) { return mul(x, -1.3); }},
      {"exp", [](const Tensor& x) { return exp(x); }},
      {"log", [](const Tensor& x) { return log(add(mul(x, x), 0.5)); }},
      {"sqrt", [](const Tensor& x) { return sqrt(add(mul(x, x), 0.5)); }},
      {"pow", [](const Tensor& x) { return pow(add(mul(x, x), 0.5), 1.7); }},
      {"pow integer", [](const Tensor& x) { return pow(x, 3.0); }},
      {"tanh", [](const Tensor& x) { return tanh(mul(x, 2.0)); }},
      {"relu", [](const Tensor& x) { return relu(x); }},
      {"gelu", [](const Tensor& x) { return gelu(mul(x, 3.0)); }},
  };
  for (const auto& [name, op] : ops) {
    for (const Shape& shape : {Shape{}, Shape{5}, Shape{2, 3, 4}}) {
      CAPTURE(name);
      CAPTURE(shape_str(shape));
      check_gradients(name, [op = op](const std::vector<Tensor>& in) { return op(in[0]); },
                      {rand64(shape, 3)});
    }
  }
}

TEST_CASE("gelu: exact erf form against closed-form values") {
  // gelu(x) = x Φ(x), Φ the standard normal CDF (values from Φ tables / erf).
  const std::vector<double> xs = {-3.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0};
  Tensor y = gelu(Tensor::from_vector(xs, {xs.size()}));
  const std::vector<double> expected = {-0.0040496941, -0.1586552539, -0.1542687694, 0.0,
                                        0.3457312306,  0.8413447461,  1.9544997361};
  for (std::size_t i = 0; i < xs.size(); ++i) CHECK(y.at({i}) == doctest::Approx(expected[i]).epsilon(1e-9));
}

TEST_CASE("operators build the same graph as the named ops") {
  Tensor a = rand64({3}, 5), b = rand64({3}, 6, 0.5, 1.0);
  CHECK((a + b).to_vector() == add(a, b).to_vector());
  CHECK((a - b).to_vector() == sub(a, b).to_vector());
  CHECK((a * b).to_vector() == mul(a, b).to_vector());
  CHECK((a / b).to_vector() == div(a, b).to_vector());
  CHECK((-a).to_vector() == neg(a).to_vector());
  CHECK((2.0 * a).to_vector() == mul(a, 2.0).to_vector());
}
