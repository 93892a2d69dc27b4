// MultiHeadAttention: every projection mode (learned, frozen, identity; qk separate, merged,
// tied) against a per-head reference built from plain ops, parameter counts, the causal
// mask, identical heads without projections, padding, dropout, inspection (maps and head
// weights), gradients, frozen matrices as untrained buffers, merged as the factorised
// model's bilinear form, tied's symmetric scores, and invalid combinations.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <map>
#include <stdexcept>
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
  o.wo = wo ? Projection::learned : Projection::identity;
  return o;
}

MultiHeadAttentionOptions with_qk(MultiHeadAttentionOptions o, QkForm form) {
  o.qk = form;
  return o;
}

MultiHeadAttentionOptions all(Projection p) {
  MultiHeadAttentionOptions o = make(p, p, p, true);
  o.wo = p;
  return o;
}

// Linear(in, out) with bias has in * out + out scalars.
constexpr std::size_t lin(std::size_t in, std::size_t out) { return in * out + out; }

std::vector<Mode> modes() {
  const auto L = Projection::learned, I = Projection::identity, F = Projection::frozen;
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
      // A frozen matrix has a learned one's shape and no learned scalars.
      {"wq frozen", make(F, L, L, true), 3 * lin(C, C), C / H, C / H},
      {"wq wk frozen", make(F, F, L, true), 2 * lin(C, C), C / H, C / H},
      {"wq frozen, wk identity", make(F, I, L, true), 2 * lin(C, C), C, C / H},
      {"everything frozen", all(F), 0, C / H, C / H},
      {"qk merged", with_qk(make(L, L, L, true), QkForm::merged), H * C * C + 2 * lin(C, C), C,
       C / H},
      {"qk merged, wv identity", with_qk(make(L, L, I, true), QkForm::merged),
       H * C * C + lin(H * C, C), C, C},
      {"qk tied", with_qk(make(L, L, L, true), QkForm::tied), 3 * lin(C, C), C / H, C / H},
      {"qk tied frozen", with_qk(make(F, F, L, true), QkForm::tied), 2 * lin(C, C), C / H, C / H},
  };
}

// softmax(q kᵀ · scale + masks) v per head from plain ops, heads concatenated, then wo; the
// state's tensors (parameters and buffers) are the weights. Also returns each head's
// probabilities (B, T, T).
Tensor reference(const MultiHeadAttention& attn, const Tensor& x,
                 const std::vector<std::uint8_t>* key_padding, std::vector<Tensor>* maps) {
  const auto& o = attn.options();
  const auto w = attn.state();
  const std::size_t B = x.size(0), T = x.size(1), dk = attn.qk_dim(), dv = attn.v_dim();
  auto project = [&](Projection p, const std::string& name) {
    return p != Projection::identity
               ? core::linear(x, w.at(name + ".weight"), w.at(name + ".bias"))
               : x;
  };
  // Head h's slice of a projected side; an identity side is x for every head.
  auto head = [](Projection p, const Tensor& t, std::size_t h, std::size_t d) {
    return p != Projection::identity ? core::slice(t, 2, h * d, (h + 1) * d) : t;
  };
  const Tensor q = o.qk == QkForm::merged ? Tensor() : project(o.wq, "wq");
  const Tensor k = o.qk == QkForm::tied     ? q
                   : o.qk == QkForm::merged ? x
                                            : project(o.wk, "wk");
  const Tensor v = project(o.wv, "wv");
  const double scale = 1.0 / std::sqrt(double(o.qk == QkForm::merged ? C / H : dk));
  Tensor padding;
  if (key_padding) {
    std::vector<double> values(key_padding->begin(), key_padding->end());
    padding = Tensor::from_vector(values, {B, 1, T}).to(x.dtype());
  }
  std::vector<Tensor> outputs;
  for (std::size_t h = 0; h < o.heads; ++h) {
    Tensor s;
    if (o.qk == QkForm::merged) {  // x_i W_h x_jᵀ
      const Tensor wh = core::reshape(core::slice(w.at("wqk"), 0, h, h + 1), {C, C});
      s = core::matmul(core::matmul(x, wh), x, false, true);
    } else {
      const Projection key_side = o.qk == QkForm::tied ? o.wq : o.wk;
      s = core::matmul(head(o.wq, q, h, dk), head(key_side, k, h, dk), false, true);
    }
    s = core::mul(s, scale);  // (B, T, T)
    if (o.causal) s = core::causal_mask(s);
    if (key_padding) s = core::masked_fill(s, padding, -std::numeric_limits<double>::infinity());
    const Tensor p = core::softmax(s);
    if (maps) maps->push_back(p);
    outputs.push_back(core::matmul(p, head(o.wv, v, h, dv)));  // (B, T, Dv)
  }
  const bool identical = attention_shape(o).one_head_for_all;
  const Tensor heads = identical ? outputs[0] : core::concat(outputs, 2);
  return o.wo != Projection::identity ? core::linear(heads, w.at("wo.weight"), w.at("wo.bias"))
                                      : heads;
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
    // Learned sides are parameters, frozen ones buffers, identity sides nothing.
    const auto kind_of = [&](const std::string& side) {
      return side == "wq" ? mode.options.wq : side == "wk" ? mode.options.wk
                          : side == "wv" ? mode.options.wv : mode.options.wo;
    };
    for (const auto& p : attn.named_parameters()) {
      const std::string side = p.name.substr(0, p.name.find('.'));
      if (side == "wqk") CHECK(mode.options.qk == QkForm::merged);
      else CHECK(kind_of(side) == Projection::learned);
    }
    for (const auto& b : attn.named_buffers()) CHECK(kind_of(b.name.substr(0, 2)) == Projection::frozen);
    // Freezing moves scalars from learned to saved-only: together they are the reference's.
    const bool projected = mode.options.qk == QkForm::separate &&
                           kind_of("wq") != Projection::identity &&
                           kind_of("wk") != Projection::identity &&
                           kind_of("wv") != Projection::identity &&
                           kind_of("wo") != Projection::identity;
    if (projected) CHECK(attn.parameter_count() + attn.buffer_count() == 4 * lin(C, C));
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
                       doctest::Contains("wq and wk, learned or frozen, need d_model divisible by heads"),
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

namespace {

// The hook point `name` of an attention layer.
HookPoint& point(MultiHeadAttention& attn, const std::string& name) {
  for (auto& [point_name, p] : attn.hook_points())
    if (point_name == name) return *p;
  FAIL("no hook point " << name);
  throw std::logic_error("unreachable");
}

// Head h's scores before any mask, from the queries and keys the forward used (read at
// hook_q and hook_k, (B, T, h, D)): q_h k_hᵀ, (B, T, T).
Tensor scores_of(const Tensor& q, const Tensor& k, std::size_t h) {
  const auto head = [h](const Tensor& t) {
    const std::size_t heads = t.size(2);
    const Tensor one = core::slice(t, 2, heads == 1 ? 0 : h, heads == 1 ? 1 : h + 1);
    return core::reshape(one, {t.size(0), t.size(1), t.size(3)});
  };
  return core::matmul(head(q), head(k), false, true);
}

double asymmetry(const Tensor& scores) {  // max |s_ij - s_ji| over (B, T, T)
  return test::max_abs_diff(scores, core::transpose(scores, 1, 2));
}

}  // namespace

TEST_CASE("attention: frozen matrices are drawn as learned ones, saved as buffers, never trained") {
  const MultiHeadAttentionOptions learned = all(Projection::learned);
  const MultiHeadAttentionOptions frozen = make(Projection::frozen, Projection::learned,
                                                Projection::frozen, true);
  core::Rng rng_a(23), rng_b(23);
  MultiHeadAttention reference_attn(learned, rng_a), attn(frozen, rng_b);
  // The same draws: the same tensors under the same names, the same function.
  const auto reference_state = reference_attn.state(), state = attn.state();
  REQUIRE(state.size() == reference_state.size());
  for (const auto& [name, tensor] : reference_state) {
    CAPTURE(name);
    CHECK(state.at(name).to_vector() == tensor.to_vector());
  }
  const Tensor x = test::random_input({2, 5, C}, 24);
  CHECK(test::max_abs_diff(attn.forward(x), reference_attn.forward(x)) == 0.0);

  std::vector<std::string> buffers, parameters;
  for (const auto& b : attn.named_buffers()) buffers.push_back(b.name);
  for (const auto& p : attn.named_parameters()) parameters.push_back(p.name);
  CHECK(buffers == std::vector<std::string>{"wq.weight", "wq.bias", "wv.weight", "wv.bias"});
  CHECK(parameters == std::vector<std::string>{"wk.weight", "wk.bias", "wo.weight", "wo.bias"});
  CHECK(attn.buffer_count() == 2 * lin(C, C));

  core::sum(core::mul(attn.forward(x), test::random_input({2, 5, C}, 25))).backward();
  for (const auto& b : attn.named_buffers()) {
    CAPTURE(b.name);
    CHECK_FALSE(b.tensor.requires_grad());
    CHECK_FALSE(b.tensor.grad().defined());
  }
  for (const auto& p : attn.named_parameters()) CHECK(p.tensor.grad().defined());

  SUBCASE("the state carries the buffers into another model") {
    core::Rng other_seed(99);
    MultiHeadAttention other(frozen, other_seed);
    CHECK(test::max_abs_diff(other.forward(x), attn.forward(x)) > 1e-3);
    other.load_state(attn.state());
    CHECK(test::max_abs_diff(other.forward(x), attn.forward(x)) == 0.0);
    auto missing = attn.state();
    missing.erase("wq.bias");
    CHECK_THROWS_WITH_AS(other.load_state(missing),
                         doctest::Contains("1 tensor(s) missing from the state: 'wq.bias'"),
                         std::invalid_argument);
  }
  SUBCASE("to(f64) converts the buffers too") {
    attn.to(DType::f64);
    for (const auto& b : attn.named_buffers()) CHECK(b.tensor.dtype() == DType::f64);
    CHECK(test::max_abs_diff(attn.forward(x.to(DType::f64)), reference_attn.forward(x)) < 1e-5);
  }
}

TEST_CASE("attention: qk merged equals the factorised model whose Wq_hᵀ·Wk_h is its matrix") {
  // A factorised model with arbitrary weights and no Q/K biases (the merged form has none).
  for (bool causal : {true, false}) {
    CAPTURE(causal);
    MultiHeadAttentionOptions factorised = all(Projection::learned), merged = factorised;
    factorised.causal = merged.causal = causal;
    merged.qk = QkForm::merged;
    core::Rng init(27), values(28), init_merged(29);
    MultiHeadAttention reference_attn(factorised, init), attn(merged, init_merged);
    reference_attn.to(DType::f64);
    attn.to(DType::f64);
    auto state = reference_attn.state();
    for (auto& [name, t] : state) t = Tensor::randn(t.shape(), values, DType::f64);
    state["wq.bias"].fill_(0.0);
    state["wk.bias"].fill_(0.0);
    reference_attn.load_state(state);

    // wqk[h] = Wq_hᵀ·Wk_h, the head's rows of wq and wk; wv and wo as they are.
    const std::size_t d = C / H;
    std::vector<Tensor> heads;
    for (std::size_t h = 0; h < H; ++h) {
      const Tensor wq = core::slice(state.at("wq.weight"), 0, h * d, (h + 1) * d);
      const Tensor wk = core::slice(state.at("wk.weight"), 0, h * d, (h + 1) * d);
      heads.push_back(core::reshape(core::matmul(wq, wk, true), {1, C, C}));
    }
    auto merged_state = attn.state();
    REQUIRE(merged_state.size() == 5);  // wqk, wv.weight, wv.bias, wo.weight, wo.bias
    merged_state["wqk"] = core::concat(heads, 0);
    for (const char* name : {"wv.weight", "wv.bias", "wo.weight", "wo.bias"})
      merged_state[name] = state.at(name);
    attn.load_state(merged_state);

    reference_attn.capture_attention(true);
    attn.capture_attention(true);
    const Tensor x = test::random_input({2, 6, C}, 30, DType::f64);
    CHECK(test::max_abs_diff(attn.forward(x), reference_attn.forward(x)) < 1e-12);
    CHECK(test::max_abs_diff(attn.attention_map(), reference_attn.attention_map()) < 1e-12);
    for (std::size_t h = 0; h < H; ++h) {
      CHECK(test::max_abs_diff(attn.head_weights(h).wqk,
                               core::reshape(heads[h], {C, C})) == 0.0);
    }
  }
}

TEST_CASE("attention: qk merged starts as the reference's scores without Q/K biases") {
  MultiHeadAttentionOptions merged = all(Projection::learned);
  merged.qk = QkForm::merged;
  core::Rng a(31), b(31);
  MultiHeadAttention reference_attn(all(Projection::learned), a), attn(merged, b);
  auto state = reference_attn.state();
  state["wq.bias"].fill_(0.0);
  state["wk.bias"].fill_(0.0);
  reference_attn.load_state(state);
  // wv and wo are drawn after the reference's wq and wk: the same values.
  for (const char* name : {"wv.weight", "wv.bias", "wo.weight", "wo.bias"})
    CHECK(attn.state().at(name).to_vector() == state.at(name).to_vector());
  const Tensor x = test::random_input({2, 6, C}, 32);
  CHECK(test::max_abs_diff(attn.forward(x), reference_attn.forward(x)) < 1e-5);
  CHECK(attn.score_scale() == reference_attn.score_scale());
  CHECK(attn.named_parameters()[0].name == "wqk");
  CHECK(attn.named_parameters()[0].tensor.shape() == core::Shape{H, C, C});
}

TEST_CASE("attention: qk tied scores are symmetric before the causal mask; separate ones are not") {
  for (Projection wq : {Projection::learned, Projection::frozen}) {
    CAPTURE(projection_name(wq));
    MultiHeadAttentionOptions tied = make(wq, wq, Projection::learned, true);
    tied.qk = QkForm::tied;
    core::Rng rng(33), same(33);
    MultiHeadAttention attn(tied, rng), separate(make(wq, wq, Projection::learned, true), same);
    CHECK(attn.named_parameters().size() + attn.named_buffers().size() == 6);  // no wk
    for (MultiHeadAttention* layer : {&attn, &separate}) {
      Tensor q, k;
      point(*layer, "hook_q").add(read_hook("hook_q", [&](const Tensor& t) { q = t.clone(); }));
      point(*layer, "hook_k").add(read_hook("hook_k", [&](const Tensor& t) { k = t.clone(); }));
      layer->forward(test::random_input({2, 6, C}, 34));
      REQUIRE(q.shape() == core::Shape{2, 6, H, C / H});
      for (std::size_t h = 0; h < H; ++h) {
        const double off = asymmetry(scores_of(q, k, h));
        if (layer == &attn) CHECK(off < 1e-5);
        else CHECK(off > 1e-2);
      }
    }
    // Its head weights say so: the key side is the query side.
    const HeadWeights w = attn.head_weights(1);
    CHECK(w.wk.to_vector() == w.wq.to_vector());
    CHECK(w.bk.to_vector() == w.bq.to_vector());
  }
  // Without the mask the maps show it: log p_ij - log p_ji = c_j - c_i for a symmetric
  // score matrix (c_i: row i's log-normaliser), so its sum around any cycle i→j→k→i is 0.
  MultiHeadAttentionOptions tied = make(Projection::learned, Projection::learned,
                                        Projection::learned, true);
  tied.qk = QkForm::tied;
  tied.causal = false;
  core::Rng rng(35);
  MultiHeadAttention attn(tied, rng);
  attn.to(DType::f64);
  attn.capture_attention(true);
  attn.forward(test::random_input({1, 5, C}, 36, DType::f64));
  const Tensor maps = attn.attention_map();
  for (std::size_t h = 0; h < H; ++h) {
    const auto a = [&](std::size_t i, std::size_t j) {
      return std::log(maps.at({0, h, i, j})) - std::log(maps.at({0, h, j, i}));
    };
    double worst = 0;
    for (std::size_t i = 0; i < 5; ++i)
      for (std::size_t j = 0; j < 5; ++j)
        for (std::size_t k = 0; k < 5; ++k) worst = std::max(worst, std::abs(a(i, j) + a(j, k) + a(k, i)));
    CHECK(worst < 1e-10);
  }
}

TEST_CASE("attention: qk forms refuse what they cannot be") {
  core::Rng rng(37);
  MultiHeadAttentionOptions o = all(Projection::learned);
  o.qk = QkForm::merged;
  o.wq = Projection::identity;
  CHECK_THROWS_WITH_AS(MultiHeadAttention(o, rng),
                       doctest::Contains("qk merged replaces wq and wk by one matrix per head"),
                       std::invalid_argument);
  o = all(Projection::learned);
  o.qk = QkForm::merged;
  o.d_model = 10;
  CHECK_THROWS_WITH_AS(MultiHeadAttention(o, rng),
                       doctest::Contains("qk merged needs d_model divisible by heads"),
                       std::invalid_argument);
  o = all(Projection::learned);
  o.qk = QkForm::tied;
  o.wk = Projection::frozen;
  CHECK_THROWS_WITH_AS(MultiHeadAttention(o, rng),
                       doctest::Contains("qk tied makes keys with wq, so wk must equal wq"),
                       std::invalid_argument);
  o.wq = o.wk = Projection::identity;
  CHECK_THROWS_WITH_AS(MultiHeadAttention(o, rng),
                       doctest::Contains("qk tied needs a learned or frozen wq"),
                       std::invalid_argument);
}
