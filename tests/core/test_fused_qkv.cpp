// The two ops of attention's fused Q, K, V product. linear_stacked equals the linears side
// by side (weights read in place when they lie one after another, packed when not;
// gradients into each weight's own gradient, the flat buffer's when it has one; none for a
// weight that does not require grad); attention_packed equals attention on the three
// column blocks; both pass finite-difference checks in double; two threads give one
// thread's bits; errors name the problem.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <vector>

#include "core/flat.hpp"
#include "core/parallel.hpp"
#include "tests/core/gradcheck_util.hpp"

using namespace qkv::core;
using qkv::test::check_gradients;
using qkv::test::rand64;

namespace {

void check_same(const Tensor& a, const Tensor& b, double tol = 1e-12) {
  REQUIRE(a.defined());
  REQUIRE(b.defined());
  REQUIRE(a.shape() == b.shape());
  const auto x = a.to_vector(), y = b.to_vector();
  for (std::size_t i = 0; i < x.size(); ++i) CHECK(x[i] == doctest::Approx(y[i]).epsilon(tol).scale(1.0));
}

// Three weights (out_i, in) and their biases, float64 leaves that require grad.
struct Blocks {
  std::vector<Tensor> w, b;
};
Blocks blocks(const std::vector<std::size_t>& outs, std::size_t in, std::uint64_t seed) {
  Blocks k;
  for (std::size_t out : outs) {
    k.w.push_back(rand64({out, in}, seed++).requires_grad_());
    k.b.push_back(rand64({out}, seed++).requires_grad_());
  }
  return k;
}
Blocks copy_of(const Blocks& k) {
  Blocks c;
  for (const Tensor& w : k.w) c.w.push_back(w.clone().requires_grad_(w.requires_grad()));
  for (const Tensor& b : k.b) c.b.push_back(b.clone().requires_grad_(b.requires_grad()));
  return c;
}

// sum(y ⊙ r): a reduction whose gradient is r, not ones.
Tensor weighed(const Tensor& y) { return sum(mul(y, rand64(y.shape(), 99))); }

Tensor unfused(const Tensor& x, const Blocks& k) {
  std::vector<Tensor> parts;
  for (std::size_t i = 0; i < k.w.size(); ++i) parts.push_back(linear(x, k.w[i], k.b[i]));
  return concat(parts, -1);
}

// The fused and the unfused product on copies of the same values, each backward `passes`
// times, compared value by value, gradient by gradient.
void check_against_linears(Blocks fused, int passes, const Shape& x_shape = {2, 3, 4}) {
  const Blocks plain = copy_of(fused);
  Tensor x = rand64(x_shape, 1).requires_grad_();
  Tensor x_plain = x.clone().requires_grad_();
  for (int pass = 0; pass < passes; ++pass) {
    const Tensor y = linear_stacked(x, fused.w, fused.b);
    const Tensor y_plain = unfused(x_plain, plain);
    check_same(y, y_plain);
    weighed(y).backward();
    weighed(y_plain).backward();
  }
  check_same(x.grad(), x_plain.grad());
  for (std::size_t i = 0; i < fused.w.size(); ++i) {
    CAPTURE(i);
    CHECK(fused.w[i].grad().defined() == fused.w[i].requires_grad());
    CHECK(fused.b[i].grad().defined() == fused.b[i].requires_grad());
    if (fused.w[i].requires_grad()) check_same(fused.w[i].grad(), plain.w[i].grad());
    if (fused.b[i].requires_grad()) check_same(fused.b[i].grad(), plain.b[i].grad());
  }
}

Tensor packed_attention(const Tensor& qkv, const AttentionOptions& o) { return attention_packed(qkv, o); }

// attention on the three blocks of qkv, sliced out (copies) as the unfused layer has them.
Tensor sliced_attention(const Tensor& qkv, const AttentionOptions& o) {
  const std::size_t w = qkv.shape()[2] / 3;
  return attention(slice(qkv, 2, 0, w), slice(qkv, 2, w, 2 * w), slice(qkv, 2, 2 * w, 3 * w), o);
}

// Two heads in one of four modes: 0 causal, 1 bidirectional, 2 causal with key padding
// `pad`, 3 causal with dropout 0.3 drawn from `rng`.
AttentionOptions mode_options(int mode, double scale, const std::vector<std::uint8_t>& pad, Rng& rng) {
  AttentionOptions o;
  o.heads = 2;
  o.scale = scale;
  o.causal = mode != 1;
  o.key_padding = mode == 2 ? &pad : nullptr;
  o.dropout = mode == 3 ? 0.3 : 0.0;
  o.training = true;
  o.rng = &rng;
  return o;
}

}  // namespace

TEST_CASE("linear_stacked: equals the linears side by side, forward and gradients") {
  SUBCASE("weights in their own buffers: packed") { check_against_linears(blocks({3, 2, 3}, 4, 10), 1); }
  SUBCASE("weights one after another, gradients in a flat buffer: read in place") {
    Blocks k = blocks({3, 2, 3}, 4, 10);
    pack_values(k.w);
    const Tensor flat = pack_gradients(k.w);
    check_against_linears(k, 1);
    CHECK(k.w[0].grad().data<double>() == flat.data<double>());
    CHECK(k.w[2].grad().data<double>() == flat.data<double>() + 5 * 4);
  }
  SUBCASE("a product large enough for one gemm (6.3M multiply-adds), packed or in place") {
    check_against_linears(blocks({64, 64, 64}, 64, 10), 2, {4, 128, 64});
    Blocks k = blocks({64, 64, 64}, 64, 10);
    pack_values(k.w);
    pack_gradients(k.w);
    check_against_linears(k, 2, {4, 128, 64});
  }
  SUBCASE("gradients added to the ones already there") {
    Blocks k = blocks({3, 2, 3}, 4, 10);
    pack_values(k.w);
    pack_gradients(k.w);
    check_against_linears(k, 2);
    check_against_linears(blocks({3, 2, 3}, 4, 10), 2);
  }
  SUBCASE("a weight and a bias that do not require grad (frozen) get no gradient") {
    Blocks k = blocks({3, 2, 3}, 4, 10);
    k.w[1].requires_grad_(false);
    k.b[1].requires_grad_(false);
    pack_values(k.w);
    pack_gradients(k.w);
    check_against_linears(k, 1);
  }
}

TEST_CASE("linear_stacked: without biases, and with one bias undefined") {
  const Tensor x = rand64({5, 4}, 1);
  const Blocks k = blocks({2, 3}, 4, 20);
  check_same(linear_stacked(x, k.w), concat({linear(x, k.w[0]), linear(x, k.w[1])}, -1));
  check_same(linear_stacked(x, k.w, {Tensor(), k.b[1]}),
             concat({linear(x, k.w[0]), linear(x, k.w[1], k.b[1])}, -1));
}

TEST_CASE("linear_stacked: backward matches finite differences") {
  auto with_biases = [](const std::vector<Tensor>& in) {
    return linear_stacked(in[0], {in[1], in[2], in[3]}, {in[4], in[5], in[6]});
  };
  const std::vector<Tensor> inputs = {rand64({2, 3, 4}, 1), rand64({3, 4}, 2), rand64({2, 4}, 3),
                                      rand64({3, 4}, 4),    rand64({3}, 5),    rand64({2}, 6),
                                      rand64({3}, 7)};
  check_gradients("linear_stacked, packed weights", with_biases, inputs);
  const std::vector<Tensor> flat = {rand64({2, 3, 4}, 1), rand64({3, 4}, 2), rand64({2, 4}, 3),
                                    rand64({3, 4}, 4),    rand64({3}, 5),    rand64({2}, 6),
                                    rand64({3}, 7)};
  pack_values({flat[1], flat[2], flat[3]});
  pack_gradients({flat[1], flat[2], flat[3]});
  check_gradients("linear_stacked, weights in one buffer", with_biases, flat);
  // Above linear_stacked's blockwise size: one gemm each way. Directional derivatives
  // along random directions over every input at once, as for a whole model.
  GradcheckOptions along;
  along.directions = 6;
  const std::vector<Tensor> large = {rand64({4, 128, 64}, 11), rand64({64, 64}, 12), rand64({64, 64}, 13),
                                     rand64({64, 64}, 14),     rand64({64}, 15),     rand64({64}, 16),
                                     rand64({64}, 17)};
  pack_values({large[1], large[2], large[3]});
  pack_gradients({large[1], large[2], large[3]});
  check_gradients("linear_stacked, one gemm, weights in one buffer", with_biases, large, along);
  check_gradients("linear_stacked, one gemm, packed weights", with_biases,
                  {rand64({4, 128, 64}, 11), rand64({64, 64}, 12), rand64({64, 64}, 13),
                   rand64({64, 64}, 14), rand64({64}, 15), rand64({64}, 16), rand64({64}, 17)},
                  along);
  check_gradients("linear_stacked, no biases",
                  [](const std::vector<Tensor>& in) { return linear_stacked(in[0], {in[1], in[2]}); },
                  {rand64({3, 4}, 8), rand64({2, 4}, 9), rand64({3, 4}, 10)});
}

TEST_CASE("attention_packed: equals attention on the three blocks, values and gradients") {
  const std::vector<std::uint8_t> pad = {0, 0, 0, 1, 0, 0, 1, 1, 0, 0};
  for (int mode = 0; mode < 4; ++mode) {
    CAPTURE(mode);
    Rng rng_packed(5), rng_sliced(5);
    Tensor probs_packed, probs_sliced;
    auto call = [&](const Tensor& qkv, bool packed) {
      AttentionOptions o = mode_options(mode, 0.6, pad, packed ? rng_packed : rng_sliced);
      o.probabilities = packed ? &probs_packed : &probs_sliced;
      return packed ? attention_packed(qkv, o) : sliced_attention(qkv, o);
    };
    Tensor qkv = rand64({2, 5, 3 * 2 * 3}, 30).requires_grad_();
    Tensor qkv_sliced = qkv.clone().requires_grad_();
    for (int pass = 0; pass < 2; ++pass) {  // the second adds to the gradient already there
      const Tensor y = call(qkv, true), y_sliced = call(qkv_sliced, false);
      check_same(y, y_sliced);
      check_same(probs_packed, probs_sliced);
      weighed(y).backward();
      weighed(y_sliced).backward();
      check_same(qkv.grad(), qkv_sliced.grad());
    }
  }
}

TEST_CASE("attention_packed: backward matches finite differences") {
  const std::vector<std::uint8_t> pad = {0, 0, 0, 1, 0, 0, 1, 1};
  for (int mode = 0; mode < 4; ++mode) {
    CAPTURE(mode);
    auto f = [&](const std::vector<Tensor>& in) {
      Rng rng(3);
      return packed_attention(in[0], mode_options(mode, 0.7, pad, rng));
    };
    check_gradients("attention_packed", f, {rand64({2, 4, 3 * 2 * 3}, 40)});
  }
}

TEST_CASE("linear_stacked and attention_packed: two threads give the one-thread result bit for bit") {
  // Large enough that core::gemm splits the products over two threads.
  auto run = [] {
    Rng rng(7);
    const std::size_t B = 8, T = 64, C = 64, H = 4;
    Tensor x = Tensor::randn({B, T, C}, rng).requires_grad_();
    std::vector<Tensor> w, b;
    for (int i = 0; i < 3; ++i) w.push_back(Tensor::randn({C, C}, rng).requires_grad_());
    for (int i = 0; i < 3; ++i) b.push_back(Tensor::randn({C}, rng).requires_grad_());
    pack_values(w);
    pack_gradients(w);
    AttentionOptions o;
    o.heads = H;
    o.scale = 0.125;
    const Tensor y = attention_packed(linear_stacked(x, w, b), o);
    sum(mul(y, y)).backward();
    std::vector<std::vector<double>> values = {y.to_vector(), x.grad().to_vector()};
    for (const Tensor& t : w) values.push_back(t.grad().to_vector());
    for (const Tensor& t : b) values.push_back(t.grad().to_vector());
    return values;
  };
  const auto one = run();
  ParallelScope scope(2);
  const auto two = run();
  REQUIRE(two.size() == one.size());
  for (std::size_t i = 0; i < one.size(); ++i) {
    CAPTURE(i);
    CHECK(two[i] == one[i]);
  }
}

TEST_CASE("attention_packed: causal blocks with key padding and dropout, two threads give one thread's bits") {
  // T = 97: three row blocks (32, 32, 33 rows); 64 (batch, head) pairs, enough to split.
  const std::size_t B = 32, T = 97, H = 2, D = 4;
  std::vector<std::uint8_t> pad(B * T, 0);
  for (std::size_t b = 0; b < B; ++b) pad[b * T + (b * 7) % T] = pad[b * T + 32] = 1;
  auto run = [&] {
    Rng rng(8);
    Tensor qkv = rand64({B, T, 3 * H * D}, 50).requires_grad_();
    AttentionOptions o = mode_options(3, 0.5, pad, rng);
    o.key_padding = &pad;
    Tensor probs;
    o.probabilities = &probs;
    const Tensor y = attention_packed(qkv, o);
    weighed(y).backward();
    return std::vector<std::vector<double>>{y.to_vector(), probs.to_vector(), qkv.grad().to_vector()};
  };
  const auto one = run();
  ParallelScope scope(2);
  const auto two = run();
  for (std::size_t i = 0; i < one.size(); ++i) {
    CAPTURE(i);
    CHECK(two[i] == one[i]);
  }
}

TEST_CASE("linear_stacked and attention_packed: errors name the problem") {
  const Tensor x = Tensor::zeros({2, 4});
  CHECK_THROWS_WITH_AS(linear_stacked(x, {}), "linear_stacked: needs at least one weight, got none",
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(linear_stacked(x, {Tensor::zeros({3, 4}), Tensor::zeros({3, 5})}),
                       doctest::Contains("input (..., in) needs every weight (out, in) (shapes [2, 4] and [3, 5])"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(linear_stacked(x, {Tensor::zeros({3, 4})}, {Tensor::zeros({3}), Tensor::zeros({3})}),
                       "linear_stacked: needs no biases or one per weight: got 2 biases for 1 weights",
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(linear_stacked(x, {Tensor::zeros({3, 4})}, {Tensor::zeros({2})}),
                       doctest::Contains("bias 0 must be (out) for weight 0 (out, in) (shapes [2] and [3, 4])"),
                       std::invalid_argument);
  AttentionOptions o;
  o.heads = 2;
  CHECK_THROWS_WITH_AS(attention_packed(Tensor::zeros({1, 3, 8}), o),
                       "attention_packed: qkv must be (B, T, 3 * heads * D) for 2 heads, got [1, 3, 8]",
                       std::invalid_argument);
  o.k_shared = true;
  CHECK_THROWS_WITH_AS(attention_packed(Tensor::zeros({1, 3, 12}), o),
                       doctest::Contains("none can be shared"), std::invalid_argument);
}
