// Reductions: forward values, keep-dims shapes, gradient checks over single and multiple
// axes, and the max-ties rule.
#include <doctest/doctest.h>

#include "tests/core/gradcheck_util.hpp"

using namespace qkv::core;
using qkv::test::check_gradients;
using qkv::test::rand64;

TEST_CASE("sum, mean, max: forward values and shapes") {
  Tensor a = Tensor::from_vector(std::vector<float>{1, 5, 3, 4, 2, 6}, {2, 3});
  CHECK(sum(a).item() == 21.0);
  CHECK(sum(a).shape().empty());
  CHECK(sum(a, {0}).to_vector() == std::vector<double>{5, 7, 9});
  CHECK(sum(a, {-1}, true).shape() == Shape{2, 1});
  CHECK(mean(a, {1}).to_vector() == std::vector<double>{3, 4});
  CHECK(mean(a).item() == 3.5);
  CHECK(max(a, {1}).to_vector() == std::vector<double>{5, 6});
  CHECK(max(a, {0, 1}).item() == 6.0);
  CHECK_THROWS_WITH_AS(sum(a, {2}), doctest::Contains("sum: axis 2 out of range for rank 2"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(sum(a, {1, -1}), doctest::Contains("given twice"), std::invalid_argument);
}

TEST_CASE("sum, mean, max: backward matches finite differences") {
  const std::vector<std::vector<int>> axis_sets = {{0}, {1}, {2}, {-1}, {0, 2}, {0, 1, 2}};
  for (const auto& axes : axis_sets) {
    for (bool keepdim : {false, true}) {
      CAPTURE(axes.size());
      CAPTURE(keepdim);
      check_gradients("sum", [&](const std::vector<Tensor>& in) { return sum(in[0], axes, keepdim); },
                      {rand64({2, 3, 4}, 7)});
      check_gradients("mean", [&](const std::vector<Tensor>& in) { return mean(in[0], axes, keepdim); },
                      {rand64({2, 3, 4}, 8)});
      check_gradients("max", [&](const std::vector<Tensor>& in) { return max(in[0], axes, keepdim); },
                      {rand64({2, 3, 4}, 9)});
    }
  }
  check_gradients("sum all", [](const std::vector<Tensor>& in) { return sum(in[0]); }, {rand64({3, 2}, 4)});
  check_gradients("mean all", [](const std::vector<Tensor>& in) { return mean(in[0]); }, {rand64({3, 2}, 4)});
}

TEST_CASE("max: ties send the gradient to the first maximal element") {
  Tensor a = Tensor::from_vector(std::vector<double>{1, 3, 3, 2}, {4}).requires_grad_();
  max(a, {0}).backward();
  CHECK(a.grad().to_vector() == std::vector<double>{0, 1, 0, 0});
}
