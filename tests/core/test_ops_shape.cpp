// Shape ops: forward layout, gradient checks, and errors.
#include <doctest/doctest.h>

#include "tests/core/gradcheck_util.hpp"

using namespace qkv::core;
using qkv::test::check_gradients;
using qkv::test::rand64;

TEST_CASE("reshape, permute, transpose, slice, concat: forward layout") {
  Tensor a = Tensor::from_vector(std::vector<float>{0, 1, 2, 3, 4, 5}, {2, 3});
  CHECK(reshape(a, {3, 2}).shape() == Shape{3, 2});
  CHECK(reshape(a, {3, 2}).to_vector() == a.to_vector());
  CHECK(transpose(a, 0, 1).to_vector() == std::vector<double>{0, 3, 1, 4, 2, 5});
  CHECK(slice(a, 1, 1, 3).to_vector() == std::vector<double>{1, 2, 4, 5});
  CHECK(slice(a, 0, 1, 2).to_vector() == std::vector<double>{3, 4, 5});
  Tensor b = Tensor::from_vector(std::vector<float>{9, 8}, {2, 1});
  CHECK(concat({a, b}, 1).to_vector() == std::vector<double>{0, 1, 2, 9, 3, 4, 5, 8});
  CHECK(concat({a, a}, 0).shape() == Shape{4, 3});
  Tensor p = permute(reshape(a, {1, 2, 3}), {2, 0, 1});
  CHECK(p.shape() == Shape{3, 1, 2});
  CHECK(p.to_vector() == std::vector<double>{0, 3, 1, 4, 2, 5});
}

TEST_CASE("split_heads and merge_heads: layout and round trip") {
  // (B=1, T=2, H*D=4) with H=2: head h of token t is columns [2h, 2h+2).
  Tensor x = Tensor::from_vector(std::vector<float>{0, 1, 2, 3, 4, 5, 6, 7}, {1, 2, 4});
  Tensor h = split_heads(x, 2);
  CHECK(h.shape() == Shape{1, 2, 2, 2});
  CHECK(h.to_vector() == std::vector<double>{0, 1, 4, 5, 2, 3, 6, 7});
  CHECK(merge_heads(h).to_vector() == x.to_vector());
  CHECK_THROWS_WITH_AS(split_heads(x, 3), doctest::Contains("divisible by 3 heads"), std::invalid_argument);
}

TEST_CASE("shape ops: backward matches finite differences") {
  check_gradients("reshape", [](const std::vector<Tensor>& in) { return reshape(in[0], {4, 3}); },
                  {rand64({2, 6}, 1)});
  check_gradients("permute", [](const std::vector<Tensor>& in) { return permute(in[0], {2, 0, 1}); },
                  {rand64({2, 3, 4}, 2)});
  check_gradients("transpose", [](const std::vector<Tensor>& in) { return transpose(in[0], -1, 0); },
                  {rand64({2, 3, 4}, 3)});
  check_gradients("slice", [](const std::vector<Tensor>& in) { return slice(in[0], 1, 1, 3); },
                  {rand64({2, 4, 3}, 4)});
  check_gradients("concat",
                  [](const std::vector<Tensor>& in) { return concat({in[0], in[1], in[0]}, 1); },
                  {rand64({2, 2, 3}, 5), rand64({2, 1, 3}, 6)});
  check_gradients("split_heads", [](const std::vector<Tensor>& in) { return split_heads(in[0], 2); },
                  {rand64({2, 3, 4}, 7)});
  check_gradients("merge_heads", [](const std::vector<Tensor>& in) { return merge_heads(in[0]); },
                  {rand64({2, 2, 3, 2}, 8)});
}

TEST_CASE("shape ops: errors name the op and the shapes") {
  Tensor a = Tensor::zeros({2, 3});
  CHECK_THROWS_WITH_AS(reshape(a, {4, 2}), doctest::Contains("reshape: element counts differ (shapes [2, 3] and [4, 2])"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(slice(a, 1, 2, 5), doctest::Contains("slice: range [2, 5) out of bounds"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(concat({a, Tensor::zeros({3, 3})}, 1),
                       doctest::Contains("concat: shapes differ off the concat axis 1 (shapes [2, 3] and [3, 3])"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(permute(a, {0, 0}), doctest::Contains("given twice"), std::invalid_argument);
}
