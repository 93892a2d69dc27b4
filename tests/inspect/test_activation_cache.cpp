// run_with_cache: every hook point's value is the forward's own (recomputed here op by op
// from the weights), the names and shapes are the documented ones for each kind of model,
// the pattern is the attention maps', a patched run changes exactly what comes after the
// patch, and hooks leave no trace: with none set (or only readers) the forward and its
// gradients are bit-identical, and the model's mode and hooks are as they were.
#include <doctest/doctest.h>

#include <cmath>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/ops.hpp"
#include "inspect/activation_cache.hpp"
#include "inspect/interventions.hpp"
#include "layers/build_model.hpp"
#include "layers/registry.hpp"
#include "tests/layers/layer_test_util.hpp"

using namespace qkv;
using core::Shape;
using core::Tensor;
using inspect::ActivationCache;
using inspect::run_with_cache;

namespace {

constexpr std::size_t kVocab = 11, kMaxLen = 8;
constexpr std::size_t B = 2, T = 5, C = 8, H = 2, D = C / H;

std::shared_ptr<layers::Transformer> make_model(const std::string& extra, std::uint64_t seed = 1,
                                                const layers::LayerRegistry& registry =
                                                    layers::layer_registry()) {
  core::Rng rng(seed);
  const layers::TransformerOptions options = layers::read_transformer_options(
      test::model_config("d_model: 8\nheads: 2\nlayers: 2\nd_ff: 16\n" + extra));
  return layers::build_model(options, kVocab, kMaxLen, rng, registry);
}

// To float round-off: |a - b| <= 1e-5 · max(1, max |b|).
void check_close(const Tensor& a, const Tensor& b, const std::string& name) {
  CAPTURE(name);
  REQUIRE(a.shape() == b.shape());
  CHECK(test::max_abs_diff(a, b) <= 1e-5 * std::max(1.0, test::max_abs(b)));
}

// (B, H, T, D) -> (B, T, H, D)
Tensor heads_last(const Tensor& t) { return core::permute(t, {0, 2, 1, 3}); }

// Block i of the reference model (pre-LN, learned projections, GELU ffn), op by op from
// its weights, from the cache's own input to the block; checks every value of the block.
void check_block_by_hand(const ActivationCache& cache, const std::map<std::string, Tensor>& w,
                         std::size_t i) {
  const std::string p = "blocks." + std::to_string(i) + ".";
  auto weight = [&](const std::string& name) { return w.at(p + name); };
  const Tensor x = cache[p + "hook_resid_pre"];
  const Tensor ln1 = core::layer_norm(x, weight("ln1.weight"), weight("ln1.bias"));
  check_close(cache[p + "ln1.hook_normalized"], ln1, "ln1");
  const Tensor q = core::linear(ln1, weight("attn.wq.weight"), weight("attn.wq.bias"));
  const Tensor k = core::linear(ln1, weight("attn.wk.weight"), weight("attn.wk.bias"));
  const Tensor v = core::linear(ln1, weight("attn.wv.weight"), weight("attn.wv.bias"));
  check_close(cache[p + "attn.hook_q"], core::reshape(q, {B, T, H, D}), "q");
  check_close(cache[p + "attn.hook_k"], core::reshape(k, {B, T, H, D}), "k");
  check_close(cache[p + "attn.hook_v"], core::reshape(v, {B, T, H, D}), "v");
  const Tensor scores = core::mul(
      core::matmul(core::split_heads(q, H), core::split_heads(k, H), false, true), 1.0 / std::sqrt(D));
  const Tensor pattern = core::softmax(core::causal_mask(scores));  // (B, H, T, T)
  check_close(cache[p + "attn.hook_pattern"], pattern, "pattern");
  const Tensor z = core::matmul(pattern, core::split_heads(v, H));  // (B, H, T, D)
  check_close(cache[p + "attn.hook_z"], heads_last(z), "z");
  const Tensor attn_out = core::linear(core::merge_heads(z), weight("attn.wo.weight"),
                                       weight("attn.wo.bias"));
  check_close(cache[p + "hook_attn_out"], attn_out, "attn_out");
  const Tensor mid = core::add(x, attn_out);
  check_close(cache[p + "hook_resid_mid"], mid, "resid_mid");
  const Tensor ln2 = core::layer_norm(mid, weight("ln2.weight"), weight("ln2.bias"));
  check_close(cache[p + "ln2.hook_normalized"], ln2, "ln2");
  const Tensor mlp = core::linear(
      core::gelu(core::linear(ln2, weight("ffn.fc1.weight"), weight("ffn.fc1.bias"))),
      weight("ffn.fc2.weight"), weight("ffn.fc2.bias"));
  check_close(cache[p + "hook_mlp_out"], mlp, "mlp_out");
  check_close(cache[p + "hook_resid_post"], core::add(mid, mlp), "resid_post");
}

Tensor forward_no_grad(layers::Transformer& model, const core::Ids& ids) {
  core::NoGrad no_grad;
  return model.forward(ids);
}

// Attention that averages the values of positions <= i, a user's layer: no inner points.
class MeanAttention : public layers::AttentionLayer {
 public:
  using AttentionLayer::forward;
  Tensor forward(const Tensor& x, const layers::KeyPadding*) override {
    const std::size_t n = x.size(1);
    std::vector<double> weights(n * n, 0.0);
    for (std::size_t i = 0; i < n; ++i)
      for (std::size_t j = 0; j <= i; ++j) weights[i * n + j] = 1.0 / static_cast<double>(i + 1);
    return core::matmul(Tensor::from_vector(weights, {n, n}).to(x.dtype()), x);
  }
};

}  // namespace

TEST_CASE("run_with_cache: every value is the forward's own, recomputed from the weights") {
  const auto model = make_model("");
  const core::Ids ids = test::random_ids({B, T}, kVocab, 2);
  model->capture_attention(true);
  const ActivationCache cache = run_with_cache(*model, ids);
  const std::map<std::string, Tensor> w = model->state();

  CHECK(cache.names() == model->hook_names());
  const Tensor embed = core::embedding(w.at("tok_emb.weight"), ids);
  CHECK(cache["hook_embed"].to_vector() == embed.to_vector());
  const Tensor positions = core::slice(w.at("pos_emb.weight"), 0, 0, T);  // (T, C)
  check_close(cache["hook_pos_embed"], core::add(Tensor::zeros({B, T, C}), positions), "pos_embed");
  CHECK(cache["blocks.0.hook_resid_pre"].to_vector() == core::add(embed, positions).to_vector());
  for (std::size_t i = 0; i < 2; ++i) check_block_by_hand(cache, w, i);
  CHECK(cache["blocks.1.hook_resid_pre"].to_vector() ==
        cache["blocks.0.hook_resid_post"].to_vector());

  // The last residual stream through ln_f and the head is the logits, bit for bit.
  const Tensor ln_final = core::layer_norm(cache["blocks.1.hook_resid_post"], w.at("ln_f.weight"),
                                           w.at("ln_f.bias"));
  CHECK(cache["ln_final.hook_normalized"].to_vector() == ln_final.to_vector());
  const Tensor logits = core::linear(ln_final, w.at("head.weight"), w.at("head.bias"));
  CHECK(cache.logits().to_vector() == logits.to_vector());
  CHECK(cache.logits().to_vector() == forward_no_grad(*model, ids).to_vector());

  // The pattern is what capture_attention keeps, and each row is a distribution.
  const std::vector<Tensor> maps = model->attention_maps();
  for (std::size_t i = 0; i < 2; ++i) {
    const Tensor pattern = cache["blocks." + std::to_string(i) + ".attn.hook_pattern"];
    CHECK(pattern.to_vector() == maps[i].to_vector());
    const std::vector<double> sums = core::sum(pattern, {-1}).to_vector();
    for (double s : sums) CHECK(s == doctest::Approx(1.0).epsilon(1e-6));
  }
}

TEST_CASE("run_with_cache: names and shapes are the documented ones") {
  const auto model = make_model("");
  const ActivationCache cache = run_with_cache(*model, test::random_ids({B, T}, kVocab, 3));
  const std::map<std::string, Shape> shapes{
      {"hook_embed", {B, T, C}},          {"hook_pos_embed", {B, T, C}},
      {"hook_resid_pre", {B, T, C}},      {"ln1.hook_normalized", {B, T, C}},
      {"attn.hook_q", {B, T, H, D}},      {"attn.hook_k", {B, T, H, D}},
      {"attn.hook_v", {B, T, H, D}},      {"attn.hook_pattern", {B, H, T, T}},
      {"attn.hook_z", {B, T, H, D}},      {"hook_attn_out", {B, T, C}},
      {"hook_resid_mid", {B, T, C}},      {"ln2.hook_normalized", {B, T, C}},
      {"hook_mlp_out", {B, T, C}},        {"hook_resid_post", {B, T, C}},
      {"ln_final.hook_normalized", {B, T, C}}, {"logits", {B, T, kVocab}}};
  REQUIRE(cache.names().size() == 2 + 2 * 12 + 2);
  for (const std::string& name : cache.names()) {
    CAPTURE(name);
    const std::string key = name.rfind("blocks.", 0) == 0 ? name.substr(name.find('.', 7) + 1) : name;
    REQUIRE(shapes.count(key) == 1);
    CHECK(cache[name].shape() == shapes.at(key));
  }
  CHECK_THROWS_WITH_AS(cache["blocks.0.attn.hook_zz"],
                       doctest::Contains("no value at 'blocks.0.attn.hook_zz' (did you mean "
                                         "'blocks.0.attn.hook_z'?)"),
                       std::out_of_range);
}

TEST_CASE("run_with_cache: identity sides, no wo, post-LN and attention-only adapt") {
  const core::Ids ids = test::random_ids({B, T}, kVocab, 4);
  SUBCASE("an identity wq is one (B, T, 1, C) query shared by the heads; wk gives C per head") {
    const auto model = make_model("attention: {wq: identity}\n");
    const ActivationCache cache = run_with_cache(*model, ids);
    CHECK(cache["blocks.0.attn.hook_q"].shape() == Shape{B, T, 1, C});
    CHECK(cache["blocks.0.attn.hook_q"].to_vector() ==
          cache["blocks.0.ln1.hook_normalized"].to_vector());
    CHECK(cache["blocks.0.attn.hook_k"].shape() == Shape{B, T, H, C});
    CHECK(cache.logits().to_vector() == forward_no_grad(*model, ids).to_vector());
  }
  SUBCASE("projections none: one head computed; its pattern stands for every head") {
    const auto model = make_model("attention: {projections: none}\n");
    const ActivationCache cache = run_with_cache(*model, ids);
    for (const char* side : {"q", "k", "v", "z"}) {
      CAPTURE(side);
      CHECK(cache[std::string("blocks.1.attn.hook_") + side].shape() == Shape{B, T, 1, C});
    }
    const Tensor pattern = cache["blocks.1.attn.hook_pattern"];
    REQUIRE(pattern.shape() == Shape{B, H, T, T});
    CHECK(core::slice(pattern, 1, 0, 1).to_vector() == core::slice(pattern, 1, 1, 2).to_vector());
    CHECK(cache["blocks.1.hook_attn_out"].to_vector() == cache["blocks.1.attn.hook_z"].to_vector());
    CHECK(cache.logits().to_vector() == forward_no_grad(*model, ids).to_vector());
  }
  SUBCASE("wo none: the heads side by side are the attention's output") {
    const auto model = make_model("attention: {wo: none}\n");
    const ActivationCache cache = run_with_cache(*model, ids);
    CHECK(cache["blocks.0.attn.hook_z"].shape() == Shape{B, T, H, D});
    CHECK(cache["blocks.0.hook_attn_out"].to_vector() == cache["blocks.0.attn.hook_z"].to_vector());
  }
  SUBCASE("post-LN: resid_mid is ln1 of the sum, resid_post ln2 of the next") {
    const auto model = make_model("norm_placement: post\n");
    const ActivationCache cache = run_with_cache(*model, ids);
    const std::map<std::string, Tensor> w = model->state();
    const Tensor mid = core::layer_norm(
        core::add(cache["blocks.0.hook_resid_pre"], cache["blocks.0.hook_attn_out"]),
        w.at("blocks.0.ln1.weight"), w.at("blocks.0.ln1.bias"));
    CHECK(cache["blocks.0.hook_resid_mid"].to_vector() == mid.to_vector());
    const Tensor post = core::layer_norm(core::add(mid, cache["blocks.0.hook_mlp_out"]),
                                         w.at("blocks.0.ln2.weight"), w.at("blocks.0.ln2.bias"));
    CHECK(cache["blocks.0.hook_resid_post"].to_vector() == post.to_vector());
    CHECK(cache.logits().to_vector() == forward_no_grad(*model, ids).to_vector());
  }
  SUBCASE("attention-only: resid_post is resid_pre plus attn_out") {
    const auto model = make_model("ffn: none\n");
    const ActivationCache cache = run_with_cache(*model, ids);
    CHECK_FALSE(cache.contains("blocks.0.hook_resid_mid"));
    CHECK_FALSE(cache.contains("blocks.0.hook_mlp_out"));
    CHECK(cache["blocks.0.hook_resid_post"].to_vector() ==
          core::add(cache["blocks.0.hook_resid_pre"], cache["blocks.0.hook_attn_out"]).to_vector());
  }
}

TEST_CASE("run_with_cache: a user's attention layer has the block's points around it") {
  layers::LayerRegistry registry = layers::layer_registry();
  registry.add("mean_attention", [](const ConfigNode&, const layers::LayerContext&, core::Rng&) {
    return std::make_shared<MeanAttention>();
  });
  const auto model = make_model("attention: mean_attention\n", 1, registry);
  const core::Ids ids = test::random_ids({B, T}, kVocab, 5);
  const ActivationCache cache = run_with_cache(*model, ids);
  CHECK_FALSE(cache.contains("blocks.0.attn.hook_z"));
  const Tensor attn_out = cache["blocks.0.hook_attn_out"];
  CHECK(attn_out.to_vector() == MeanAttention().forward(cache["blocks.0.ln1.hook_normalized"]).to_vector());
  CHECK(cache["blocks.0.hook_resid_mid"].to_vector() ==
        core::add(cache["blocks.0.hook_resid_pre"], attn_out).to_vector());
  CHECK(cache.logits().to_vector() == forward_no_grad(*model, ids).to_vector());
}

TEST_CASE("run_with_cache: patching blocks.1.hook_resid_pre changes exactly what follows it") {
  const auto model = make_model("");
  const core::Ids ids = test::random_ids({B, T}, kVocab, 6);
  const ActivationCache clean = run_with_cache(*model, ids);
  const Tensor other = test::random_input({B, T, C}, 7);
  const ActivationCache patched =
      run_with_cache(*model, ids, {inspect::patch("blocks.1.hook_resid_pre", other)});
  REQUIRE(patched.names() == clean.names());
  bool after = false;
  for (const std::string& name : clean.names()) {
    CAPTURE(name);
    if (name == "blocks.1.hook_resid_pre") {
      CHECK(patched[name].to_vector() == other.to_vector());
      after = true;
    } else if (after) {
      CHECK(test::max_abs_diff(patched[name], clean[name]) > 1e-4);
    } else {
      CHECK(patched[name].to_vector() == clean[name].to_vector());
    }
  }
}

TEST_CASE("run_with_cache: the model's mode and hooks are as they were, also after a throw") {
  const auto model = make_model("");
  const core::Ids ids = test::random_ids({B, T}, kVocab, 8);
  model->train();
  model->add_hook(layers::read_hook("logits", [](const Tensor&) {}));
  run_with_cache(*model, ids);
  CHECK(model->is_training());
  CHECK_THROWS_WITH_AS(
      run_with_cache(*model, ids, {layers::replace_hook("blocks.0.hook_attn_out",
                                                        [](const Tensor&) { return Tensor::zeros({1}); })}),
      doctest::Contains("hook at 'blocks.0.hook_attn_out': the replacement must have"),
      std::invalid_argument);
  CHECK(model->is_training());
  for (const std::string& name : model->hook_names()) {
    CAPTURE(name);
    CHECK(model->hook_point(name).active() == (name == "logits"));
  }
}

TEST_CASE("hooks: readers leave the forward and the gradients bit-identical to no hooks") {
  const auto plain = make_model("", 9);
  const auto hooked = make_model("", 9);
  const core::Ids ids = test::random_ids({B, T}, kVocab, 10);
  const core::Ids targets = test::random_ids({B, T}, kVocab, 11);
  std::size_t reads = 0;
  for (const std::string& name : hooked->hook_names())
    hooked->add_hook(layers::read_hook(name, [&reads](const Tensor&) { ++reads; }));

  const Tensor plain_logits = plain->forward(ids);
  const Tensor hooked_logits = hooked->forward(ids);
  CHECK(reads == hooked->hook_names().size());
  CHECK(hooked_logits.to_vector() == plain_logits.to_vector());
  core::cross_entropy(plain_logits, targets).backward();
  core::cross_entropy(hooked_logits, targets).backward();
  const std::vector<core::NamedParameter> a = plain->named_parameters(), b = hooked->named_parameters();
  REQUIRE(a.size() == b.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    CAPTURE(a[i].name);
    CHECK(b[i].tensor.grad().to_vector() == a[i].tensor.grad().to_vector());
  }

  // With the hooks cleared (a replacer among them) the forward is the plain model's again.
  hooked->add_hook(inspect::zero_ablate_head(0, 1));
  CHECK(hooked->forward(ids).to_vector() != plain_logits.to_vector());
  hooked->clear_hooks();
  CHECK(hooked->forward(ids).to_vector() == plain_logits.to_vector());
}
