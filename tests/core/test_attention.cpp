// Fused multi-head attention: forward against PyTorch (causal + key padding), against the
// same computation composed from basic ops (causal lengths around the row blocks' bounds,
// with key padding across them, not causal with T != S), shared (identity) operands,
// gradient checks for every mode, and errors.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <fstream>
#include <nlohmann/json.hpp>

#include "tests/core/gradcheck_util.hpp"

using namespace qkv::core;
using qkv::test::check_gradients;
using qkv::test::rand64;

namespace {

// The attention of one layout composed from basic ops, heads copied out explicitly, with
// the (B, S) key padding `pad` if not null; `probs` receives P (B, H, T, S) if not null.
Tensor composed(const Tensor& q, const Tensor& k, const Tensor& v, std::size_t heads, bool causal,
                const std::vector<std::uint8_t>* pad = nullptr, Tensor* probs = nullptr) {
  const std::size_t dk = q.shape()[2] / heads;
  Tensor s = mul(matmul(split_heads(q, heads), split_heads(k, heads), false, true), 1.0 / std::sqrt(double(dk)));
  if (causal) s = causal_mask(s);
  if (pad) {
    const std::vector<double> padded(pad->begin(), pad->end());
    s = masked_fill(s, Tensor::from_vector(padded, {k.shape()[0], 1, 1, k.shape()[1]}),
                    -std::numeric_limits<double>::infinity());
  }
  const Tensor p = softmax(s);
  if (probs) *probs = p.detach();
  return merge_heads(matmul(p, split_heads(v, heads)));
}

void check_same(const Tensor& a, const Tensor& b, double tol = 1e-12) {
  REQUIRE(a.shape() == b.shape());
  const auto x = a.to_vector(), y = b.to_vector();
  for (std::size_t i = 0; i < x.size(); ++i) CHECK(x[i] == doctest::Approx(y[i]).epsilon(tol).scale(1.0));
}

// sum(y ⊙ r): a reduction whose gradient is r, not ones.
Tensor weighed(const Tensor& y) { return sum(mul(y, rand64(y.shape(), 99))); }

// attention and the composition of basic ops on copies of q, k, v: values, probabilities
// (the masked ones exactly 0 in both) and the gradients of q, k and v.
void check_against_composed(const Shape& q_shape, const Shape& kv_shape, bool causal,
                            const std::vector<std::uint8_t>* pad = nullptr) {
  const std::size_t heads = 2;
  std::vector<Tensor> fused = {rand64(q_shape, 1), rand64(kv_shape, 2), rand64(kv_shape, 3)}, plain;
  for (Tensor& t : fused) {
    t.requires_grad_();
    plain.push_back(t.clone().requires_grad_());
  }
  Tensor probs, probs_plain;
  AttentionOptions o;
  o.heads = heads;
  o.scale = 1.0 / std::sqrt(double(q_shape[2] / heads));
  o.causal = causal;
  o.key_padding = pad;
  o.probabilities = &probs;
  const Tensor y = attention(fused[0], fused[1], fused[2], o);
  const Tensor y_plain = composed(plain[0], plain[1], plain[2], heads, causal, pad, &probs_plain);
  check_same(y, y_plain);
  check_same(probs, probs_plain);
  const auto p = probs.to_vector(), p_plain = probs_plain.to_vector();
  std::size_t masked = 0, mismatched = 0;
  for (std::size_t i = 0; i < p.size(); ++i) {
    if (p_plain[i] != 0.0) continue;
    ++masked;
    if (p[i] != 0.0) ++mismatched;
  }
  CHECK(mismatched == 0);
  const std::size_t b = q_shape[0], t = q_shape[1];
  if (causal && !pad) CHECK(masked == b * heads * t * (t - 1) / 2);
  weighed(y).backward();
  weighed(y_plain).backward();
  for (std::size_t i = 0; i < 3; ++i) {
    CAPTURE(i);
    check_same(fused[i].grad(), plain[i].grad());
  }
}

}  // namespace

TEST_CASE("attention: forward matches PyTorch with causal and key padding masks") {
  std::ifstream in(std::string(QKV_SOURCE_DIR) + "/tests/fixtures/core/nn_reference.json");
  REQUIRE(in.good());
  const auto c = nlohmann::json::parse(in)["attention"];
  const std::size_t B = c["B"], T = c["T"], H = c["H"], D = c["D"];
  auto make = [&](const char* key) { return Tensor::from_vector(c[key].get<std::vector<double>>(), {B, T, H * D}); };
  const auto pad = c["pad"].get<std::vector<std::uint8_t>>();
  Tensor probs;
  AttentionOptions o;
  o.heads = H;
  o.scale = 1.0 / std::sqrt(double(D));
  o.key_padding = &pad;
  o.probabilities = &probs;
  Tensor y = attention(make("q"), make("k"), make("v"), o);
  check_same(y, Tensor::from_vector(c["y"].get<std::vector<double>>(), {B, T, H * D}));
  check_same(probs, Tensor::from_vector(c["probs"].get<std::vector<double>>(), {B, H, T, T}));
}

TEST_CASE("attention: equals the composition of basic ops") {
  Tensor q = rand64({2, 5, 6}, 1), k = rand64({2, 5, 6}, 2), v = rand64({2, 5, 6}, 3);
  for (bool causal : {false, true}) {
    AttentionOptions o;
    o.heads = 3;
    o.scale = 1.0 / std::sqrt(2.0);
    o.causal = causal;
    check_same(attention(q, k, v, o), composed(q, k, v, 3, causal));
  }
}

TEST_CASE("attention: causal rows run in blocks; every length gives the composition's values and gradients") {
  // Blocks of about 32 query rows, each over the keys it can see: lengths below one block,
  // at and beside its multiples, and T = 1; the masked probabilities stay exact zeros.
  for (std::size_t t : {1, 2, 17, 31, 32, 33, 64, 65, 97, 130}) {
    CAPTURE(t);
    check_against_composed({2, t, 4}, {2, t, 4}, true);
  }
}

TEST_CASE("attention: causal blocks with key padding, across block boundaries") {
  // Batch 0 pads keys 0 (so query 0 sees no key at all: zero probabilities), 31, 32 and 64,
  // the last keys of a block and the first of the next; batch 1 pads its last two keys.
  const std::size_t t = 65;
  std::vector<std::uint8_t> pad(2 * t, 0);
  for (std::size_t j : {0, 31, 32, 64}) pad[j] = 1;
  pad[2 * t - 1] = pad[2 * t - 2] = 1;
  check_against_composed({2, t, 4}, {2, t, 4}, true, &pad);
}

TEST_CASE("attention: not causal, the whole rectangle at lengths above and below 32, T != S") {
  check_against_composed({2, 40, 4}, {2, 40, 4}, false);
  check_against_composed({2, 5, 4}, {2, 40, 4}, false);
  check_against_composed({2, 40, 4}, {2, 3, 4}, false);
  std::vector<std::uint8_t> pad(2 * 40, 0);
  pad[3] = pad[39] = pad[40] = 1;
  check_against_composed({2, 7, 4}, {2, 40, 4}, false, &pad);
}

TEST_CASE("attention: a shared operand is the same as repeating it for every head") {
  Tensor x = rand64({2, 4, 3}, 4);
  Tensor kv = rand64({2, 4, 6}, 5);
  AttentionOptions shared;
  shared.heads = 2;
  shared.scale = 0.5;
  shared.q_shared = true;
  AttentionOptions repeated = shared;
  repeated.q_shared = false;
  check_same(attention(x, kv, kv, shared), attention(concat({x, x}, 2), kv, kv, repeated));
  // All three shared (raw dot products): every head identical.
  AttentionOptions none;
  none.heads = 2;
  none.scale = 1.0;
  none.q_shared = none.k_shared = none.v_shared = true;
  Tensor probs;
  none.probabilities = &probs;
  Tensor y = attention(x, x, x, none);
  CHECK(y.shape() == Shape{2, 4, 6});
  check_same(slice(y, 2, 0, 3), slice(y, 2, 3, 6));
  check_same(slice(probs, 1, 0, 1), slice(probs, 1, 1, 2));
}

TEST_CASE("attention: backward matches finite differences in every mode") {
  struct Mode {
    const char* name;
    bool causal, q_shared, k_shared, v_shared;
    bool padding;
  };
  const std::vector<Mode> modes = {
      {"causal", true, false, false, false, false},     {"bidirectional", false, false, false, false, false},
      {"padding", true, false, false, false, true},     {"shared q", true, true, false, false, false},
      {"shared k", false, false, true, false, false},   {"shared v", true, false, false, true, false},
      {"all shared", true, true, true, true, false},
  };
  for (const Mode& m : modes) {
    CAPTURE(m.name);
    const std::size_t H = 2, D = 3;
    const std::vector<std::uint8_t> pad = {0, 0, 0, 1, 0, 0, 1, 1};
    auto f = [&](const std::vector<Tensor>& in) {
      AttentionOptions o;
      o.heads = H;
      o.scale = 0.7;
      o.causal = m.causal;
      o.q_shared = m.q_shared;
      o.k_shared = m.k_shared;
      o.v_shared = m.v_shared;
      o.key_padding = m.padding ? &pad : nullptr;
      return attention(in[0], in[1], in[2], o);
    };
    check_gradients(m.name, f,
                    {rand64({2, 4, m.q_shared ? D : H * D}, 6), rand64({2, 4, m.k_shared ? D : H * D}, 7),
                     rand64({2, 4, m.v_shared ? D : H * D}, 8)});
  }
  // q, k and v the very same tensor (projections: none).
  check_gradients("q = k = v",
                  [](const std::vector<Tensor>& in) {
                    AttentionOptions o;
                    o.heads = 2;
                    o.q_shared = o.k_shared = o.v_shared = true;
                    return attention(in[0], in[0], in[0], o);
                  },
                  {rand64({2, 4, 3}, 9)});
  // Several causal blocks (T = 70: rows [0, 35) and [35, 70)), with padding and dropout.
  std::vector<std::uint8_t> pad70(70, 0);
  pad70[34] = pad70[35] = pad70[69] = 1;
  check_gradients("causal blocks, padding, dropout",
                  [&](const std::vector<Tensor>& in) {
                    Rng rng(4);
                    AttentionOptions o;
                    o.heads = 1;
                    o.scale = 0.8;
                    o.dropout = 0.2;
                    o.training = true;
                    o.rng = &rng;
                    o.key_padding = &pad70;
                    return attention(in[0], in[1], in[2], o);
                  },
                  {rand64({1, 70, 2}, 13), rand64({1, 70, 2}, 14), rand64({1, 70, 2}, 15)});
  check_gradients("causal blocks, shared k",
                  [](const std::vector<Tensor>& in) {
                    AttentionOptions o;
                    o.heads = 2;
                    o.scale = 0.8;
                    o.k_shared = true;
                    return attention(in[0], in[1], in[2], o);
                  },
                  {rand64({1, 66, 4}, 16), rand64({1, 66, 2}, 17), rand64({1, 66, 4}, 18)});
  check_gradients("dropout",
                  [](const std::vector<Tensor>& in) {
                    Rng rng(3);
                    AttentionOptions o;
                    o.heads = 2;
                    o.scale = 0.5;
                    o.dropout = 0.3;
                    o.training = true;
                    o.rng = &rng;
                    return attention(in[0], in[1], in[2], o);
                  },
                  {rand64({2, 4, 4}, 10), rand64({2, 4, 4}, 11), rand64({2, 4, 4}, 12)});
}

TEST_CASE("attention: errors name the problem") {
  AttentionOptions o;
  o.heads = 4;
  CHECK_THROWS_WITH_AS(attention(Tensor::zeros({1, 2, 6}), Tensor::zeros({1, 2, 6}), Tensor::zeros({1, 2, 6}), o),
                       doctest::Contains("q width 6 is not divisible by 4 heads"), std::invalid_argument);
  o.heads = 2;
  CHECK_THROWS_WITH_AS(attention(Tensor::zeros({1, 2, 6}), Tensor::zeros({1, 2, 4}), Tensor::zeros({1, 2, 6}), o),
                       doctest::Contains("q and k head widths differ"), std::invalid_argument);
  const std::vector<std::uint8_t> pad(3, 0);
  o.key_padding = &pad;
  CHECK_THROWS_WITH_AS(attention(Tensor::zeros({1, 2, 6}), Tensor::zeros({1, 2, 6}), Tensor::zeros({1, 2, 6}), o),
                       doctest::Contains("key_padding has 3 entries, expected B*S = 2"), std::invalid_argument);
}
