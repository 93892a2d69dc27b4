// MultiHeadAttention's fused Q, K, V product (one linear_stacked gemm read by
// attention_packed) against three Linears and core::attention on the same parameters: the
// same outputs and gradients up to float rounding, with the parameters in their own
// buffers (the stacked weights packed) or in one flat buffer as the optimizer lays them out
// (read in place, gradients landing in the flat gradient buffer), frozen matrices
// included; hooks on q, k, v see (B, T, H, D) copies and readers change no bit.
#include <doctest/doctest.h>

#include <map>
#include <string>
#include <vector>

#include "core/flat.hpp"
#include "core/ops.hpp"
#include "layers/attention.hpp"
#include "layer_test_util.hpp"

using namespace qkv;
using namespace qkv::layers;
using core::Tensor;

namespace {

constexpr std::size_t C = 16, H = 4;

MultiHeadAttentionOptions options(Projection wq, Projection wk, Projection wv, Projection wo) {
  MultiHeadAttentionOptions o;
  o.d_model = C;
  o.heads = H;
  o.wq = wq;
  o.wk = wk;
  o.wv = wv;
  o.wo = wo;
  return o;
}

// The parameters and buffers of attn by name: the handles themselves, not copies.
std::map<std::string, Tensor> tensors_of(const MultiHeadAttention& attn) {
  std::map<std::string, Tensor> out;
  for (const auto& p : attn.named_parameters()) out.emplace(p.name, p.tensor);
  for (const auto& b : attn.named_buffers()) out.emplace(b.name, b.tensor);
  return out;
}

// The unfused layer on attn's own tensors: one core::linear per projection, then attention.
Tensor three_linears(const MultiHeadAttention& attn, const Tensor& x) {
  const std::map<std::string, Tensor> t = tensors_of(attn);
  auto project = [&](const std::string& name) {
    return core::linear(x, t.at(name + ".weight"), t.at(name + ".bias"));
  };
  core::AttentionOptions o;
  o.heads = H;
  o.scale = attn.score_scale();
  const Tensor heads = core::attention(project("wq"), project("wk"), project("wv"), o);
  return t.count("wo.weight") ? core::linear(heads, t.at("wo.weight"), t.at("wo.bias")) : heads;
}

struct Run {
  Tensor y, dx;
  std::vector<Tensor> grads;  // of attn.parameters(), in order
};

// forward and backward of sum(y ⊙ r) on x; `flat` packs the parameters as the optimizer does
// (one buffer for values, one for gradients) and checks the gradients landed there.
Run run(MultiHeadAttention& attn, bool flat, bool fused) {
  const std::vector<Tensor> params = attn.parameters();
  Tensor flat_grads;
  if (flat && !params.empty()) {
    core::pack_values(params);
    flat_grads = core::pack_gradients(params);
  }
  Tensor x = test::random_input({3, 7, C}, 2).requires_grad_();
  Run r;
  r.y = fused ? attn.forward(x) : three_linears(attn, x);
  core::sum(core::mul(r.y, test::random_input({3, 7, C}, 3))).backward();
  r.dx = x.grad();
  std::size_t offset = 0;
  for (const Tensor& p : params) {
    REQUIRE(p.grad().defined());
    if (flat_grads.defined()) CHECK(p.grad().data<float>() == flat_grads.data<float>() + offset);
    offset += p.numel();
    r.grads.push_back(p.grad());
  }
  return r;
}

void check_close(const Run& a, const Run& b) {
  CHECK(test::max_abs_diff(a.y, b.y) < 1e-6);
  CHECK(test::max_abs_diff(a.dx, b.dx) < 1e-5);
  REQUIRE(a.grads.size() == b.grads.size());
  for (std::size_t i = 0; i < a.grads.size(); ++i) {
    CAPTURE(i);
    CHECK(test::max_abs_diff(a.grads[i], b.grads[i]) < 1e-5 * (1.0 + test::max_abs(b.grads[i])));
  }
}

}  // namespace

TEST_CASE("attention: the fused Q, K, V product equals one gemm per projection") {
  const auto L = Projection::learned, F = Projection::frozen, I = Projection::identity;
  struct Case {
    const char* name;
    MultiHeadAttentionOptions options;
  };
  const std::vector<Case> cases = {
      {"all learned", options(L, L, L, L)},
      {"wo none", options(L, L, L, I)},
      {"wk frozen", options(L, F, L, L)},
      {"wq wk wv frozen", options(F, F, F, L)},
  };
  for (const Case& c : cases) {
    for (bool flat : {false, true}) {
      CAPTURE(c.name);
      CAPTURE(flat);
      core::Rng rng_fused(5), rng_plain(5);
      MultiHeadAttention fused(c.options, rng_fused), plain(c.options, rng_plain);
      check_close(run(fused, flat, true), run(plain, flat, false));
    }
  }
}

TEST_CASE("attention: hooks on q, k, v see (B, T, H, D) copies; readers change no bit") {
  core::Rng rng_a(6), rng_b(6);
  const MultiHeadAttentionOptions o = options(Projection::learned, Projection::learned,
                                              Projection::learned, Projection::learned);
  MultiHeadAttention plain(o, rng_a), hooked(o, rng_b);
  std::vector<core::Shape> seen;
  for (const auto& [name, point] : hooked.hook_points())
    if (name != "hook_pattern" && name != "hook_z")
      point->add(read_hook(name, [&seen](const Tensor& t) { seen.push_back(t.shape()); }));
  const Run a = run(plain, true, true), b = run(hooked, true, true);
  CHECK(seen == std::vector<core::Shape>(3, core::Shape{3, 7, H, C / H}));
  CHECK(a.y.to_vector() == b.y.to_vector());
  CHECK(a.dx.to_vector() == b.dx.to_vector());
  for (std::size_t i = 0; i < a.grads.size(); ++i) CHECK(a.grads[i].to_vector() == b.grads[i].to_vector());

  // A replacer acts: zeroing v zeroes the heads, so the output is wo's bias on every row.
  hooked.hook_points()[2].second->add(
      replace_hook("hook_v", [](const Tensor& v) { return core::mul(v, 0.0); }));
  const Tensor y = hooked.forward(test::random_input({3, 7, C}, 2));
  const Tensor bias = tensors_of(hooked).at("wo.bias");
  CHECK(test::max_abs_diff(y, core::add(core::mul(y, 0.0), bias)) < 1e-6);
}

TEST_CASE("attention: the fused layer keeps training mode's dropout and its maps") {
  core::Rng rng_fused(8), rng_plain(8), drop_fused(9), drop_plain(9);
  MultiHeadAttentionOptions o = options(Projection::learned, Projection::learned,
                                        Projection::learned, Projection::learned);
  o.dropout = 0.25;
  MultiHeadAttention fused(o, rng_fused, &drop_fused), hooked(o, rng_plain, &drop_plain);
  hooked.hook_points()[2].second->add(read_hook("hook_v", [](const Tensor&) {}));
  fused.capture_attention(true);
  hooked.capture_attention(true);
  const Tensor x = test::random_input({2, 6, C}, 10);
  CHECK(fused.forward(x).to_vector() == hooked.forward(x).to_vector());
  CHECK(fused.attention_map().to_vector() == hooked.attention_map().to_vector());
  CHECK(test::max_abs(fused.attention_map()) > 0.0);
}
