// linear_gelu, FeedForward's fused fc1 and GELU: the values and every gradient of
// gelu(linear(x, w, b)) bit for bit (with and without a bias, widths that are and are not
// whole SIMD blocks, gradients added to ones already there, a frozen bias, two threads),
// finite differences in double, and errors that name the op.
#include <doctest/doctest.h>

#include <stdexcept>
#include <vector>

#include "core/parallel.hpp"
#include "core/random.hpp"
#include "tests/core/gradcheck_util.hpp"

using namespace qkv::core;
using qkv::test::check_gradients;
using qkv::test::rand64;

namespace {

struct Params {
  Tensor x, w, b;
};

// Float inputs of (rows, in) -> (rows, out), the bias absent when !with_bias.
Params params(std::size_t rows, std::size_t in, std::size_t out, bool with_bias, std::uint64_t seed) {
  Rng rng(seed);
  Params p;
  p.x = Tensor::randn({rows, in}, rng).requires_grad_();
  p.w = mul(Tensor::randn({out, in}, rng), 0.3).detach().requires_grad_();
  if (with_bias) p.b = Tensor::randn({out}, rng).requires_grad_();
  return p;
}

// The output and the gradients of x, w and b (when defined) after backward of
// sum(y ⊙ r), `passes` times over (the later ones add to the gradients).
std::vector<std::vector<double>> run(Params p, bool fused, int passes = 1) {
  for (Tensor* t : {&p.x, &p.w, &p.b})
    if (t->defined()) t->zero_grad();
  Tensor y;
  for (int i = 0; i < passes; ++i) {
    y = fused ? linear_gelu(p.x, p.w, p.b) : gelu(linear(p.x, p.w, p.b));
    Rng rng(99);
    const Tensor r = Tensor::randn(y.shape(), rng);
    sum(mul(y, r)).backward();
  }
  std::vector<std::vector<double>> out = {y.to_vector(), p.x.grad().to_vector(), p.w.grad().to_vector()};
  if (p.b.defined() && p.b.requires_grad()) out.push_back(p.b.grad().to_vector());
  return out;
}

void check_fused_equals_unfused(const Params& p, int passes = 1) {
  const auto unfused = run(p, false, passes);
  const auto fused = run(p, true, passes);
  REQUIRE(fused.size() == unfused.size());
  for (std::size_t i = 0; i < fused.size(); ++i) {
    CAPTURE(i);
    CHECK(fused[i] == unfused[i]);
  }
}

}  // namespace

TEST_CASE("linear_gelu: gelu(linear(x, w, b)) bit for bit, values and gradients") {
  SUBCASE("a width of whole SIMD blocks") { check_fused_equals_unfused(params(70, 24, 128, true, 1)); }
  SUBCASE("a width that is not (37: chunks of 384 rows, the last one short, with a scalar tail)") {
    check_fused_equals_unfused(params(900, 13, 37, true, 2));
  }
  SUBCASE("no bias") { check_fused_equals_unfused(params(40, 16, 48, false, 3)); }
  SUBCASE("gradients added to the ones already there") {
    check_fused_equals_unfused(params(33, 8, 40, true, 4), 2);
  }
  SUBCASE("a frozen bias gets no gradient") {
    Params p = params(20, 8, 32, true, 5);
    p.b.requires_grad_(false);
    check_fused_equals_unfused(p);
    CHECK_FALSE(p.b.grad().defined());
  }
  SUBCASE("batch axes: (B, T, in) -> (B, T, out)") {
    Rng rng(6);
    Params p = params(1, 12, 64, true, 6);
    p.x = Tensor::randn({3, 7, 12}, rng).requires_grad_();
    const Tensor y = linear_gelu(p.x, p.w, p.b);
    CHECK(y.shape() == Shape{3, 7, 64});
    check_fused_equals_unfused(p);
  }
}

TEST_CASE("linear_gelu: two threads give the one-thread result bit for bit") {
  // 600 x 256 = 153,600 elements: both passes split over the two threads.
  const Params p = params(600, 64, 256, true, 7);
  const auto one = run(p, true);
  ParallelScope scope(2);
  const auto two = run(p, true);
  REQUIRE(two.size() == one.size());
  for (std::size_t i = 0; i < one.size(); ++i) {
    CAPTURE(i);
    CHECK(two[i] == one[i]);
  }
}

TEST_CASE("linear_gelu: backward matches finite differences") {
  check_gradients("linear_gelu", [](const std::vector<Tensor>& in) { return linear_gelu(in[0], in[1], in[2]); },
                  {rand64({2, 3, 4}, 1), rand64({5, 4}, 2), rand64({5}, 3)});
  check_gradients("linear_gelu no bias", [](const std::vector<Tensor>& in) { return linear_gelu(in[0], in[1]); },
                  {rand64({3, 4}, 4), rand64({17, 4}, 5)});
}

TEST_CASE("linear_gelu: shape errors name the op and both shapes") {
  CHECK_THROWS_WITH_AS(linear_gelu(Tensor::zeros({2, 3}), Tensor::zeros({4, 2})),
                       doctest::Contains("linear_gelu: input (..., in) needs weight (out, in) (shapes [2, 3] and [4, 2])"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(linear_gelu(Tensor::zeros({2, 3}), Tensor::zeros({4, 3}), Tensor::zeros({3})),
                       doctest::Contains("linear_gelu: bias must be (out) for weight (out, in)"),
                       std::invalid_argument);
}
