// MultiHeadAttention: every projection mode against a per-head reference built from plain
// ops, parameter counts, the causal mask, identical heads without projections, padding,
// dropout, inspection (maps and head weights), gradients, and invalid combinations.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "core/ops.hpp"
#include "layers/attention.hpp"
#include "layer_test_util.hpp"

using namespace qkv;
using namespace qkv::layers;
using core::DType;
using core::Tensor;

namespace {

constexpr std::size_t C = 12, H = 3;

struct Mode {
  const char* name;
  MultiHeadAttentionOptions options;
  std::size_t parameters;  // scalars learned
  std::size_t qk_dim, v_dim;
};

MultiHeadAttentionOptions make(Projection wq, Projection wk, Projection wv, bool wo) {
  MultiHeadAttentionOptions o;
  o.d_model = C;
  o.heads = H;
  o.wq = wq;
  o.wk = wk;
  o.wv = wv;
  o.wo = wo;
  return o;
}

// Linear(in, out) with bias has in * out + out scalars.
constexpr std::size_t lin(std::size_t in, std::size_t out) { return in * out + out; }

std::vector<Mode> modes() {
  const auto L = Projection::learned, I = Projection::identity;
  return {
      {"all learned", make(L, L, L, true), 4 * lin(C, C), C / H, C / H},
      {"wq identity", make(I, L, L, true), lin(C, H * C) + 2 * lin(C, C), C, C / H},
      {"wk identity", make(L, I, L, true), lin(C, H * C) + 2 * lin(C, C), C, C / H},
      {"wq wk identity", make(I, I, L, true), 2 * lin(C, C), C, C / H},
      {"wv identity", make(L, L, I, true), 2 * lin(C, C) + lin(H * C, C), C / H, C},
      {"wq wv identity", make(I, L, I, true), lin(C, H * C) + lin(H * C, C), C, C},
      {"wo none", make(L, L, L, false), 3 * lin(C, C), C / H, C / H},
      {"wq wk identity, wo none", make(I, I, L, false), lin(C, C), C, C / H},
      {"wq wk wv identity, wo learned", make(I, I, I, true), lin(H * C, C), C, C},
      {"projections none", MultiHeadAttentionOptions::no_projections(C, H), 0, C, C},
  };
}

// softmax(q kᵀ / sqrt(Dk) + masks) v per head from plain ops, heads concatenated, then wo.
// Also returns each head's probabilities (B, T, T).
Tensor reference(const MultiHeadAttention& attn, const Tensor& x,
                 const std::vector<std::uint8_t>* key_padding, std::vector<Tensor>* maps) {
  const auto& o = attn.options();
  const auto w = attn.state();
  const std::size_t B = x.size(0), T = x.size(1), dk = attn.qk_dim(), dv = attn.v_dim();
  auto project = [&](Projection p, const std::string& name) {
    return p == Projection::learned ? core::linear(x, w.at(name + ".weight"), w.at(name + ".bias"))
                                    : x;
  };
  const Tensor q = project(o.wq, "wq"), k = project(o.wk, "wk"), v = project(o.wv, "wv");
  auto head = [](Projection p, const Tensor& t, std::size_t h, std::size_t d) {
    return p == Projection::learned ? core::slice(t, 2, h * d, (h + 1) * d) : t;
  };
  Tensor padding;
  if (key_padding) {
    std::vector<double> values(key_padding->begin(), key_padding->end());
    padding = Tensor::from_vector(values, {B, 1, T}).to(x.dtype());
  }
  std::vector<Tensor> outputs;
  for (std::size_t h = 0; h < o.heads; ++h) {
    Tensor s = core::matmul(head(o.wq, q, h, dk), head(o.wk, k, h, dk), false, true);
    s = core::mul(s, 1.0 / std::sqrt(double(dk)));  // (B, T, T)
    if (o.causal) s = core::causal_mask(s);
    if (key_padding) s = core::masked_fill(s, padding, -std::numeric_limits<double>::infinity());
    const Tensor p = core::softmax(s);
    if (maps) maps->push_back(p);
    outputs.push_back(core::matmul(p, head(o.wv, v, h, dv)));  // (B, T, Dv)
  }
  const bool identical = o.wq == Projection::identity && o.wk == Projection::identity &&
                         o.wv == Projection::identity && !o.wo;
  const Tensor heads = identical ? outputs[0] : core::concat(outputs, 2);
  return o.wo ? core::linear(heads, w.at("wo.weight"), w.at("wo.bias")) : heads;
}

// Head h of probabilities (B, H, T, T) as (B, T, T).
Tensor head_map(const Tensor& maps, std::size_t h) {
  const std::size_t B = maps.size(0), T = maps.size(2);
  return core::reshape(core::slice(maps, 1, h, h + 1), {B, T, T});
}

}  // namespace

TEST_CASE("attention: every projection mode has the right shapes and parameter count") {
  for (const Mode& mode : modes()) {
    CAPTURE(mode.name);
    core::Rng rng(1);
    MultiHeadAttention attn(mode.options, rng);
    CHECK(attn.parameter_count() == mode.parameters);
    CHECK(attn.qk_dim() == mode.qk_dim);
    CHECK(attn.v_dim() == mode.v_dim);
    attn.capture_attention(true);
    CHECK(attn.forward(test::random_input({2, 5, C}, 2)).shape() == core::Shape{2, 5, C});
    CHECK(attn.attention_map().shape() == core::Shape{2, H, 5, 5});
    for (const auto& p : attn.named_parameters()) {
      const std::string side = p.name.substr(0, 2);
      const Projection mode_of_side = side == "wq"   ? mode.options.wq
                                      : side == "wk" ? mode.options.wk
                                                     : mode.options.wv;
      if (side != "wo") CHECK(mode_of_side == Projection::learned);  // identity adds nothing
    }
  }
}

TEST_CASE("attention: parameter names are wq, wk, wv, wo with weight and bias") {
  core::Rng rng(1);
  MultiHeadAttention attn(make(Projection::learned, Projection::learned, Projection::learned, true),
                          rng);
  std::vector<std::string> names;
  for (const auto& p : attn.named_parameters()) names.push_back(p.name);
  CHECK(names == std::vector<std::string>{"wq.weight", "wq.bias", "wk.weight", "wk.bias",
                                          "wv.weight", "wv.bias", "wo.weight", "wo.bias"});
}

TEST_CASE("attention: every mode matches per-head attention built from plain ops") {
  for (bool causal : {true, false}) {
    for (Mode mode : modes()) {
      CAPTURE(mode.name);
      CAPTURE(causal);
      mode.options.causal = causal;
      core::Rng rng(3);
      MultiHeadAttention attn(mode.options, rng);
      attn.to(DType::f64);
      attn.capture_attention(true);
      const Tensor x = test::random_input({2, 5, C}, 4, DType::f64);
      std::vector<Tensor> maps;
      const Tensor expected = reference(attn, x, nullptr, &maps);
      CHECK(test::max_abs_diff(attn.forward(x), expected) < 1e-12);
      for (std::size_t h = 0; h < H; ++h) {
        const Tensor& map = maps[maps.size() == 1 ? 0 : h];
        CHECK(test::max_abs_diff(head_map(attn.attention_map(), h), map) < 1e-12);
      }
    }
  }
}

TEST_CASE("attention: causal mask — changing position t changes no output before t") {
  const std::size_t T = 6, t = 3;
  for (const Mode& mode : modes()) {
    CAPTURE(mode.name);
    core::Rng rng(5);
    MultiHeadAttention attn(mode.options, rng);
    Tensor x = test::random_input({2, T, C}, 6);
    const Tensor before = attn.forward(x);
    Tensor changed = x.clone();
    float* p = changed.data<float>();
    for (std::size_t b = 0; b < 2; ++b)
      for (std::size_t c = 0; c < C; ++c) p[(b * T + t) * C + c] += 1.5f;
    const Tensor after = attn.forward(changed);
    const std::vector<double> y0 = before.to_vector(), y1 = after.to_vector();
    for (std::size_t b = 0; b < 2; ++b) {
      for (std::size_t i = 0; i < T; ++i) {
        double diff = 0;
        for (std::size_t c = 0; c < C; ++c) {
          diff = std::max(diff, std::abs(y0[(b * T + i) * C + c] - y1[(b * T + i) * C + c]));
        }
        if (i < t) CHECK(diff == 0.0);  // exactly
        else CHECK(diff > 0.0);
      }
    }
    // Without the mask, earlier positions do see the change.
    MultiHeadAttentionOptions open = mode.options;
    open.causal = false;
    core::Rng same(5);
    MultiHeadAttention bidirectional(open, same);
    CHECK(test::max_abs_diff(core::slice(bidirectional.forward(x), 1, 0, t),
                             core::slice(bidirectional.forward(changed), 1, 0, t)) > 0.0);
  }
}

TEST_CASE("attention: without projections every head has the same map; learned heads differ") {
  core::Rng rng(7);
  const Tensor x = test::random_input({2, 5, C}, 8);
  auto spread = [](const Tensor& maps) {  // largest difference between head 0 and another
    double worst = 0;
    for (std::size_t h = 1; h < H; ++h) {
      worst = std::max(worst, test::max_abs_diff(head_map(maps, 0), head_map(maps, h)));
    }
    return worst;
  };
  SUBCASE("projections none") {
    MultiHeadAttention attn(MultiHeadAttentionOptions::no_projections(C, H), rng);
    attn.capture_attention(true);
    attn.forward(x);
    CHECK(spread(attn.attention_map()) == 0.0);
  }
  SUBCASE("wq and wk identity, each head computed on its own") {
    MultiHeadAttention attn(make(Projection::identity, Projection::identity, Projection::learned, true),
                            rng);
    attn.capture_attention(true);
    attn.forward(x);
    CHECK(spread(attn.attention_map()) == 0.0);
  }
  SUBCASE("learned projections, random init") {
    MultiHeadAttention attn(make(Projection::learned, Projection::learned, Projection::learned, true),
                            rng);
    attn.capture_attention(true);
    attn.forward(x);
    CHECK(spread(attn.attention_map()) > 1e-3);
  }
}

TEST_CASE("attention: projections none is softmax(x xᵀ / sqrt(C)) x") {
  core::Rng rng(9);
  MultiHeadAttention attn(MultiHeadAttentionOptions::no_projections(C, 4), rng);
  const Tensor x = test::random_input({2, 4, C}, 10, DType::f64);
  const Tensor scores = core::mul(core::matmul(x, x, false, true), 1.0 / std::sqrt(double(C)));
  const Tensor expected = core::matmul(core::softmax(core::causal_mask(scores)), x);
  CHECK(test::max_abs_diff(attn.forward(x), expected) < 1e-12);
  CHECK(attn.parameter_count() == 0);
  CHECK(attn.heads() == 4);
}

TEST_CASE("attention: padded keys get no attention and cannot change other positions") {
  const std::size_t B = 2, T = 5;
  // Sequence 1 ends in two padding positions.
  const std::vector<std::uint8_t> padding{0, 0, 0, 0, 0, 0, 0, 0, 1, 1};
  for (const Mode& mode : modes()) {
    CAPTURE(mode.name);
    MultiHeadAttentionOptions o = mode.options;
    o.causal = false;
    core::Rng rng(11);
    MultiHeadAttention attn(o, rng);
    attn.to(DType::f64);
    attn.capture_attention(true);
    Tensor x = test::random_input({B, T, C}, 12, DType::f64);
    const Tensor y = attn.forward(x, &padding);
    CHECK(test::max_abs_diff(y, reference(attn, x, &padding, nullptr)) < 1e-12);
    const Tensor maps = attn.attention_map();  // (B, H, T, T)
    for (std::size_t h = 0; h < H; ++h)
      for (std::size_t i = 0; i < T; ++i)
        for (std::size_t j = 3; j < T; ++j) CHECK(maps.at({1, h, i, j}) == 0.0);
    double* p = x.data<double>();
    for (std::size_t c = 0; c < C; ++c) p[(1 * T + 4) * C + c] = 100.0;
    const Tensor y2 = attn.forward(x, &padding);
    CHECK(test::max_abs_diff(core::slice(y, 1, 0, 3), core::slice(y2, 1, 0, 3)) == 0.0);
  }
}

TEST_CASE("attention: dropout on probabilities acts in training mode only") {
  core::Rng init(13), dropout_rng(14);
  MultiHeadAttentionOptions o =
      make(Projection::learned, Projection::learned, Projection::learned, true);
  o.dropout = 0.5;
  MultiHeadAttention attn(o, init, &dropout_rng);
  const Tensor x = test::random_input({2, 5, C}, 15);
  attn.eval();
  const Tensor eval_1 = attn.forward(x), eval_2 = attn.forward(x);
  CHECK(test::max_abs_diff(eval_1, eval_2) == 0.0);
  attn.train();
  CHECK(test::max_abs_diff(attn.forward(x), eval_1) > 1e-3);

  CHECK_THROWS_WITH_AS(MultiHeadAttention(o, init), doctest::Contains("dropout > 0 needs a dropout_rng"),
                       std::invalid_argument);
}

TEST_CASE("attention: head_weights are the head's slices, detached") {
  core::Rng rng(16);
  SUBCASE("all learned") {
    MultiHeadAttention attn(make(Projection::learned, Projection::learned, Projection::learned, true),
                            rng);
    const auto state = attn.state();
    const std::size_t d = C / H;
    for (std::size_t h = 0; h < H; ++h) {
      const HeadWeights w = attn.head_weights(h);
      CHECK(w.wq.shape() == core::Shape{d, C});
      CHECK(w.bq.shape() == core::Shape{d});
      CHECK(w.wv.shape() == core::Shape{d, C});
      CHECK(w.wo.shape() == core::Shape{C, d});
      CHECK_FALSE(w.wq.requires_grad());
      CHECK(w.wq.to_vector() == core::slice(state.at("wq.weight"), 0, h * d, (h + 1) * d).to_vector());
      CHECK(w.bk.to_vector() == core::slice(state.at("wk.bias"), 0, h * d, (h + 1) * d).to_vector());
      CHECK(w.wo.to_vector() == core::slice(state.at("wo.weight"), 1, h * d, (h + 1) * d).to_vector());
    }
  }
  SUBCASE("identity sides are undefined; a learned side opposite identity is C wide per head") {
    MultiHeadAttention attn(make(Projection::identity, Projection::learned, Projection::identity, true),
                            rng);
    const HeadWeights w = attn.head_weights(2);
    CHECK_FALSE(w.wq.defined());
    CHECK_FALSE(w.bq.defined());
    CHECK_FALSE(w.wv.defined());
    CHECK(w.wk.shape() == core::Shape{C, C});
    CHECK(w.wo.shape() == core::Shape{C, C});
  }
  SUBCASE("projections none has no weights") {
    MultiHeadAttention attn(MultiHeadAttentionOptions::no_projections(C, H), rng);
    const HeadWeights w = attn.head_weights(0);
    CHECK_FALSE(w.wq.defined());
    CHECK_FALSE(w.wo.defined());
    CHECK_THROWS_WITH_AS(attn.head_weights(3), doctest::Contains("head 3 out of range (heads 3)"),
                         std::out_of_range);
  }
}

TEST_CASE("attention: capture does not change the output") {
  core::Rng rng(17);
  MultiHeadAttention attn(make(Projection::learned, Projection::identity, Projection::learned, true),
                          rng);
  const Tensor x = test::random_input({2, 5, C}, 18);
  const Tensor plain = attn.forward(x);
  CHECK_FALSE(attn.attention_map().defined());
  attn.capture_attention(true);
  CHECK(test::max_abs_diff(attn.forward(x), plain) == 0.0);
  CHECK(attn.attention_map().defined());
  CHECK_FALSE(attn.attention_map().requires_grad());
}

TEST_CASE("attention: gradients match finite differences in every mode") {
  for (Mode mode : modes()) {
    CAPTURE(mode.name);
    // Small enough for a full element-wise check: C = 4, H = 2.
    mode.options.d_model = 4;
    mode.options.heads = 2;
    core::Rng rng(19);
    MultiHeadAttention attn(mode.options, rng);
    attn.to(DType::f64);
    std::vector<Tensor> inputs = attn.parameters();
    inputs.push_back(test::random_input({2, 3, 4}, 20, DType::f64));
    test::check_gradients(mode.name,
                          [&](const std::vector<Tensor>& in) { return attn.forward(in.back()); },
                          inputs);
  }
}

TEST_CASE("attention: impossible combinations are rejected with the options named") {
  core::Rng rng(21);
  MultiHeadAttentionOptions o = make(Projection::learned, Projection::learned, Projection::learned, true);
  o.d_model = 10;
  CHECK_THROWS_WITH_AS(MultiHeadAttention(o, rng),
                       doctest::Contains("learned wq and wk need d_model divisible by heads"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(MultiHeadAttention(o, rng), doctest::Contains("d_model 10, heads 3"),
                       std::invalid_argument);
  // Identity on every side needs no division: each head is 10 wide.
  o.wq = o.wk = o.wv = Projection::identity;
  CHECK_NOTHROW(MultiHeadAttention(o, rng));

  o = make(Projection::learned, Projection::learned, Projection::identity, false);
  CHECK_THROWS_WITH_AS(MultiHeadAttention(o, rng),
                       doctest::Contains("without wo the heads side by side are the output, so "
                                         "heads * 12 (value width per head) must equal d_model"),
                       std::invalid_argument);
  o.heads = 1;
  CHECK_NOTHROW(MultiHeadAttention(o, rng));

  o = make(Projection::learned, Projection::learned, Projection::learned, true);
  o.heads = 0;
  CHECK_THROWS_WITH_AS(MultiHeadAttention(o, rng), doctest::Contains("d_model and heads must be positive"),
                       std::invalid_argument);
  o.heads = 3;
  o.dropout = 1.0;
  CHECK_THROWS_WITH_AS(MultiHeadAttention(o, rng), doctest::Contains("dropout must be in [0, 1)"),
                       std::invalid_argument);
  MultiHeadAttention attn(make(Projection::learned, Projection::learned, Projection::learned, true), rng);
  CHECK_THROWS_WITH_AS(attn.forward(Tensor::zeros({2, 3, 8})),
                       doctest::Contains("expected input (B, T, 12), got [2, 3, 8]"),
                       std::invalid_argument);
}
