// Fused multi-head attention: forward against PyTorch (causal + key padding), against the
// same computation composed from basic ops, shared (identity) operands, gradient checks
// for every mode, and errors.
#include <doctest/doctest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "tests/core/gradcheck_util.hpp"

using namespace qkv::core;
using qkv::test::check_gradients;
using qkv::test::rand64;

namespace {

// The attention of one layout composed from basic ops, heads copied out explicitly.
Tensor composed(const Tensor& q, const Tensor& k, const Tensor& v, std::size_t heads, bool causal) {
  const std::size_t dk = q.shape()[2] / heads;
  Tensor s = mul(matmul(split_heads(q, heads), split_heads(k, heads), false, true), 1.0 / std::sqrt(double(dk)));
  if (causal) s = causal_mask(s);
  return merge_heads(matmul(softmax(s), split_heads(v, heads)));
}

void check_same(const Tensor& a, const Tensor& b, double tol = 1e-12) {
  REQUIRE(a.shape() == b.shape());
  const auto x = a.to_vector(), y = b.to_vector();
  for (std::size_t i = 0; i < x.size(); ++i) CHECK(x[i] == doctest::Approx(y[i]).epsilon(tol).scale(1.0));
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
