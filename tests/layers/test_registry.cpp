// Layer registry and the model section: types by name with helpful errors, the built-in
// types' keys, user layers from a config, and the `model:` schema read strictly
// (misspellings, old spellings, impossible combinations, a slot given the wrong kind).
#include <doctest/doctest.h>

#include <algorithm>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "core/ops.hpp"
#include "layers/attention.hpp"
#include "layers/build_model.hpp"
#include "layers/builtin_layers.hpp"
#include "layers/layer_norm.hpp"
#include "layers/linear.hpp"
#include "layers/registry.hpp"
#include "layer_test_util.hpp"

using namespace qkv;
using namespace qkv::layers;
using core::Tensor;

namespace {

// A user layer: y = gain * x, with `gain` read from its config section.
class Gain : public Layer {
 public:
  Gain(std::size_t dim, double gain) {
    gain_ = register_parameter("gain", Tensor::full({dim}, gain), ParamKind::norm);
  }
  Tensor forward(const Tensor& x) override { return core::mul(x, gain_); }

 private:
  Tensor gain_;
};

std::shared_ptr<Layer> make_gain(const ConfigNode& options, const LayerContext& context,
                                 core::Rng&) {
  return std::make_shared<Gain>(context.d_model, options.get<double>("gain", 1.0));
}

// A factory whose layer refuses its arguments (a Linear with no outputs).
std::shared_ptr<Layer> make_zero_width(const ConfigNode&, const LayerContext& context,
                                       core::Rng& rng) {
  return std::make_shared<Linear>(context.d_model, 0, rng);
}

LayerRegistry registry_with_gain() {
  LayerRegistry registry;
  register_builtin_layers(registry);
  registry.add("gain", make_gain);
  registry.add("zero_width", make_zero_width);
  return registry;
}

const std::vector<std::string> kKnown = {
    "feed_forward",         "gain",        "layer_norm",           "learned_positions",
    "multi_head_attention", "sinusoidal_positions", "zero_width"};
const char* kKnownList =
    "(known types: feed_forward gain layer_norm learned_positions multi_head_attention "
    "sinusoidal_positions zero_width)";

LayerContext small_context() {
  LayerContext context;
  context.d_model = 8;
  context.heads = 2;
  context.d_ff = 16;
  context.max_len = 6;
  return context;
}

// The slot `key` of the model section in `text`.
TypedSection slot(const std::string& text, const std::string& key, const std::string& default_type) {
  return test::model_config(text).section(key, default_type);
}

std::shared_ptr<Transformer> build(const std::string& text,
                                   const LayerRegistry& registry = layer_registry()) {
  core::Rng rng(7);
  return build_model(read_transformer_options(test::model_config(text)), 10, 6, rng, registry);
}

std::vector<std::string> names_of(const Module& m) {
  std::vector<std::string> names;
  for (const auto& p : m.named_parameters()) names.push_back(p.name);
  return names;
}

bool has_name(const Module& m, const std::string& name) {
  const auto names = names_of(m);
  return std::find(names.begin(), names.end(), name) != names.end();
}

const std::string kBase = "d_model: 8\nheads: 2\nlayers: 1\n";

}  // namespace

TEST_CASE("registry: unknown types list the known ones and the closest match") {
  const LayerRegistry registry = registry_with_gain();
  CHECK(registry.types() == kKnown);
  core::Rng rng(1);
  const TypedSection typo = slot("ffn: {type: feed_foward}\n", "ffn", "feed_forward");
  CHECK_THROWS_WITH_AS(registry.create(typo, small_context(), rng),
                       doctest::Contains(("model.ffn.type: unknown layer type 'feed_foward' " +
                                          std::string(kKnownList) + "; did you mean 'feed_forward'?")
                                             .c_str()),
                       ConfigError);
  CHECK_THROWS_WITH_AS(registry.create(typo, small_context(), rng),
                       doctest::Contains("test.yaml:2:15"), ConfigError);
  CHECK_THROWS_WITH_AS(registry.create(slot("ffn: lstm\n", "ffn", "feed_forward"), small_context(), rng),
                       doctest::Contains(("unknown layer type 'lstm' " + std::string(kKnownList)).c_str()),
                       ConfigError);
  // Without `type:` the section is the slot's default type.
  auto plain = registry.create(slot("ffn: {hidden: 24}\n", "ffn", "feed_forward"), small_context(), rng);
  REQUIRE(dynamic_cast<FeedForward*>(plain.get()) != nullptr);
  CHECK(dynamic_cast<FeedForward&>(*plain).options().hidden == 24);
}

TEST_CASE("registry: a name can be registered once") {
  LayerRegistry registry = registry_with_gain();
  CHECK_THROWS_WITH_AS(registry.add("gain", make_gain),
                       doctest::Contains("layer type 'gain' is already registered"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(registry.add("", make_gain), doctest::Contains("the type name is empty"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(registry.add("empty", LayerFactory()),
                       doctest::Contains("the factory for 'empty' is empty"), std::invalid_argument);
  // The process-wide registry has the built-ins, and they cannot be replaced.
  for (const char* type : {"feed_forward", "layer_norm", "learned_positions", "multi_head_attention",
                           "sinusoidal_positions"}) {
    CAPTURE(type);
    CHECK(layer_registry().contains(type));
  }
  CHECK_THROWS_WITH_AS(RegisterLayer("feed_forward", make_gain),
                       doctest::Contains("layer type 'feed_forward' is already registered"),
                       std::invalid_argument);
}

TEST_CASE("registry: the built-in feed_forward reads hidden and activation, else the model's") {
  const LayerRegistry registry = registry_with_gain();
  core::Rng rng(2);
  LayerContext context = small_context();
  context.activation = Activation::relu;
  auto plain = registry.create(slot("ffn: {type: feed_forward}\n", "ffn", "feed_forward"), context, rng);
  auto* ffn = dynamic_cast<FeedForward*>(plain.get());
  REQUIRE(ffn != nullptr);
  CHECK(ffn->options().hidden == 16);
  CHECK(ffn->options().activation == Activation::relu);
  auto wide = registry.create(
      slot("ffn: {type: feed_forward, hidden: 24, activation: gelu}\n", "ffn", "feed_forward"),
      context, rng);
  CHECK(dynamic_cast<FeedForward&>(*wide).options().hidden == 24);
  CHECK(dynamic_cast<FeedForward&>(*wide).options().activation == Activation::gelu);
}

TEST_CASE("registry: the built-in layer_norm reads eps") {
  const LayerRegistry registry = registry_with_gain();
  core::Rng rng(3);
  auto plain = registry.create(slot("", "norm", "layer_norm"), small_context(), rng);
  CHECK(dynamic_cast<LayerNorm&>(*plain).eps() == 1e-5);
  CHECK(dynamic_cast<LayerNorm&>(*plain).dim() == 8);
  auto loose = registry.create(slot("norm: {eps: 0.001}\n", "norm", "layer_norm"), small_context(), rng);
  CHECK(dynamic_cast<LayerNorm&>(*loose).eps() == 0.001);
  CHECK_THROWS_WITH_AS(
      registry.create(slot("norm: {eps: 0}\n", "norm", "layer_norm"), small_context(), rng),
      doctest::Contains("model.norm.eps: expected a positive number, found 0"), ConfigError);
}

TEST_CASE("registry: a layer that refuses its arguments is an error naming the section") {
  const LayerRegistry registry = registry_with_gain();
  core::Rng rng(4);
  CHECK_THROWS_WITH_AS(
      registry.create(slot("ffn: zero_width\n", "ffn", "feed_forward"), small_context(), rng),
      doctest::Contains("model.ffn.type: layer type 'zero_width': Linear: in_features and "
                        "out_features must be positive"),
      ConfigError);
}

TEST_CASE("build_model: a user layer named in the config becomes every block's ffn") {
  const LayerRegistry registry = registry_with_gain();
  auto transformer = build("d_model: 8\nheads: 2\nlayers: 2\nffn: {type: gain, gain: 0.5}\n", registry);
  CHECK(has_name(*transformer, "blocks.0.ffn.gain"));
  CHECK(has_name(*transformer, "blocks.1.ffn.gain"));
  CHECK(has_name(*transformer, "blocks.0.ln2.weight"));
  CHECK(transformer->state().at("blocks.0.ffn.gain").to_vector() == std::vector<double>(8, 0.5));
  CHECK(transformer->forward(test::random_ids({2, 6}, 10, 4)).shape() == core::Shape{2, 6, 10});
  // Its keys are checked like every other key.
  CHECK_THROWS_WITH_AS(build(kBase + "ffn: {type: gain, gian: 0.5}\n", registry),
                       doctest::Contains("unknown key 'model.ffn.gian'; did you mean 'model.ffn.gain'?"),
                       ConfigError);
  // The process-wide registry does not know test-local types.
  CHECK_THROWS_WITH_AS(build(kBase + "ffn: {type: gain}\n"),
                       doctest::Contains("unknown layer type 'gain'"), ConfigError);
}

TEST_CASE("build_model: defaults give the reference architecture") {
  auto model = build(kBase);
  CHECK(model->vocab() == 10);
  CHECK(model->max_len() == 6);
  const TransformerOptions& o = model->options();
  CHECK(o.d_ff == 32);  // 4 * d_model
  CHECK(o.activation == Activation::gelu);
  CHECK(o.dropout == 0.0);
  CHECK(o.norm_placement == NormPlacement::pre);
  CHECK(o.positional.type == "learned_positions");
  CHECK(o.norm.type == "layer_norm");
  CHECK(o.attention.type == "multi_head_attention");
  CHECK(o.ffn.type == "feed_forward");
  CHECK(has_name(*model, "pos_emb.weight"));
  const auto& attention = dynamic_cast<const MultiHeadAttention&>(model->block(0).attention());
  CHECK(attention.options().causal);
  CHECK(attention.options().wq == Projection::learned);
  CHECK(attention.options().wo == Projection::learned);
  CHECK(attention.options().dropout == 0.0);
  const auto& ffn = dynamic_cast<const FeedForward&>(*model->block(0).ffn());
  CHECK(ffn.options().hidden == 32);
  CHECK(ffn.options().activation == Activation::gelu);
  CHECK(model->state().at("blocks.0.ffn.fc1.weight").shape() == core::Shape{32, 8});
}

TEST_CASE("build_model: every option is read from the config") {
  auto model = build(kBase +
                     "d_ff: 12\nactivation: relu\ndropout: 0.1\n"
                     "positional: sinusoidal_positions\nnorm_placement: post\nnorm: {eps: 0.01}\n"
                     "attention: {wq: identity, wv: identity, causal: false}\n");
  const TransformerOptions& o = model->options();
  CHECK(o.positional.type == "sinusoidal_positions");
  CHECK_FALSE(has_name(*model, "pos_emb.weight"));
  CHECK(o.norm_placement == NormPlacement::post);
  CHECK(model->block(0).options().norm_placement == NormPlacement::post);
  CHECK(o.dropout == 0.1);
  CHECK(model->block(0).options().dropout == 0.1);
  const auto& attention = dynamic_cast<const MultiHeadAttention&>(model->block(0).attention());
  CHECK(attention.options().dropout == 0.1);  // follows the model's dropout unless given
  CHECK(attention.options().wq == Projection::identity);
  CHECK(attention.options().wk == Projection::learned);
  CHECK(attention.options().wv == Projection::identity);
  CHECK_FALSE(attention.options().causal);
  CHECK_FALSE(has_name(*model, "blocks.0.attn.wq.weight"));
  CHECK(model->state().at("blocks.0.attn.wk.weight").shape() == core::Shape{16, 8});  // H·C
  CHECK(model->state().at("blocks.0.attn.wo.weight").shape() == core::Shape{8, 16});
  const auto& ffn = dynamic_cast<const FeedForward&>(*model->block(0).ffn());
  CHECK(ffn.options().hidden == 12);
  CHECK(ffn.options().activation == Activation::relu);
  // The one norm section builds ln1, ln2 and ln_f.
  std::size_t norms = 0;
  for (const auto* parent : {static_cast<const Module*>(&model->block(0)),
                             static_cast<const Module*>(model.get())}) {
    for (const auto& [name, child] : parent->children()) {
      if (name != "ln1" && name != "ln2" && name != "ln_f") continue;
      CHECK(dynamic_cast<const LayerNorm&>(*child).eps() == 0.01);
      ++norms;
    }
  }
  CHECK(norms == 3);

  SUBCASE("projections none and attention-only") {
    auto bare = build(kBase + "attention: {projections: none, dropout: 0.0}\nffn: none\n");
    CHECK(bare->block(0).ffn() == nullptr);
    CHECK(bare->block(0).attention().parameter_count() == 0);
    CHECK(bare->parameter_count() == 10 * 8 + 6 * 8 + 2 * 8 + 2 * 8 + 8 * 10 + 10);
  }
  SUBCASE("ffn options without a type are the built-in feed_forward's") {
    auto custom = build(kBase + "ffn: {hidden: 20}\n");
    CHECK(custom->state().at("blocks.0.ffn.fc1.weight").shape() == core::Shape{20, 8});
  }
}

TEST_CASE("build_model: frozen, merged and tied attention from the config, counted apart") {
  const std::size_t C = 8, H = 2, lin = C * C + C;  // one C -> C Linear with bias
  auto attention_of = [](const Transformer& model) {
    return dynamic_cast<const MultiHeadAttention&>(model.block(0).attention()).options();
  };
  const auto reference = build(kBase);
  CHECK(reference->attention_parameter_count() == 4 * lin);
  SUBCASE("frozen: buffers of the same names, not parameters") {
    const auto model = build(kBase + "attention: {wq: frozen, wk: frozen, wo: frozen}\n");
    CHECK(attention_of(*model).wq == Projection::frozen);
    CHECK(attention_of(*model).wo == Projection::frozen);
    CHECK(model->attention_parameter_count() == lin);  // wv alone is learned
    CHECK(model->parameter_count() == reference->parameter_count() - 3 * lin);
    CHECK(model->buffer_count() == 3 * lin);
    CHECK_FALSE(has_name(*model, "blocks.0.attn.wq.weight"));
    CHECK(model->state().count("blocks.0.attn.wq.weight") == 1);  // saved all the same
    // Drawn as the learned ones: the same initial values under the same names.
    const auto state = model->state(), reference_state = reference->state();
    for (const auto& [name, tensor] : reference_state) {
      CAPTURE(name);
      CHECK(state.at(name).to_vector() == tensor.to_vector());
    }
  }
  SUBCASE("merged: one C x C matrix per head instead of wq and wk") {
    const auto model = build(kBase + "attention: {qk: merged}\n");
    CHECK(attention_of(*model).qk == QkForm::merged);
    CHECK(model->state().at("blocks.0.attn.wqk").shape() == core::Shape{H, C, C});
    CHECK_FALSE(has_name(*model, "blocks.0.attn.wk.weight"));
    CHECK(model->attention_parameter_count() == H * C * C + 2 * lin);
  }
  SUBCASE("tied: wq makes the keys, learned or frozen") {
    const auto model = build(kBase + "attention: {qk: tied}\n");
    CHECK(attention_of(*model).qk == QkForm::tied);
    CHECK_FALSE(has_name(*model, "blocks.0.attn.wk.weight"));
    CHECK(model->attention_parameter_count() == 3 * lin);
    const auto frozen = build(kBase + "attention: {qk: tied, wq: frozen}\n");
    CHECK(attention_of(*frozen).wk == Projection::frozen);
    CHECK(frozen->attention_parameter_count() == 2 * lin);
  }
  SUBCASE("none") {
    CHECK(build(kBase + "attention: {projections: none}\n")->attention_parameter_count() == 0);
  }
}

TEST_CASE("build_model: the qk forms refuse the keys they have no use for") {
  CHECK_THROWS_WITH_AS(build(kBase + "attention: {qk: merged, wq: learned}\n"),
                       doctest::Contains("model.attention.wq: cannot be combined with qk: merged"),
                       ConfigError);
  CHECK_THROWS_WITH_AS(build(kBase + "attention: {qk: merged, wk: identity}\n"),
                       doctest::Contains("model.attention.wk: cannot be combined with qk: merged"),
                       ConfigError);
  CHECK_THROWS_WITH_AS(build(kBase + "attention: {qk: tied, wk: learned}\n"),
                       doctest::Contains("model.attention.wk: cannot be combined with qk: tied"),
                       ConfigError);
  CHECK_THROWS_WITH_AS(build(kBase + "attention: {qk: tied, wq: identity}\n"),
                       doctest::Contains("model.attention.wq: qk: tied needs wq learned or frozen"),
                       ConfigError);
  CHECK_THROWS_WITH_AS(build(kBase + "attention: {projections: none, qk: tied}\n"),
                       doctest::Contains("model.attention.qk: cannot be combined with projections: none"),
                       ConfigError);
  CHECK_THROWS_WITH_AS(build(kBase + "attention: {qk: fused}\n"),
                       doctest::Contains("model.attention.qk: expected one of separate, merged, tied"),
                       ConfigError);
  CHECK_THROWS_WITH_AS(build(kBase + "attention: {wo: identity}\n"),
                       doctest::Contains("model.attention.wo: expected one of learned, frozen, none"),
                       ConfigError);
  CHECK_THROWS_WITH_AS(build("d_model: 10\nheads: 4\nlayers: 1\nattention: {qk: merged}\n"),
                       doctest::Contains("model.attention.qk: MultiHeadAttention (d_model 10, heads 4"),
                       ConfigError);
}

TEST_CASE("build_model: misspelled keys and impossible values are config errors") {
  const LayerRegistry registry = registry_with_gain();
  auto with = [&](const std::string& extra) { return build(kBase + extra, registry); };
  CHECK_THROWS_WITH_AS(with("positonal: sinusoidal_positions\n"),
                       doctest::Contains("unknown key 'model.positonal'; did you mean 'model.positional'?"),
                       ConfigError);
  CHECK_THROWS_WITH_AS(with("attention: {wk: identity, casual: false}\n"),
                       doctest::Contains("did you mean 'model.attention.causal'?"), ConfigError);
  CHECK_THROWS_WITH_AS(with("norm: {type: layer_norm, esp: 0.1}\n"),
                       doctest::Contains("unknown key 'model.norm.esp'; did you mean 'model.norm.eps'?"),
                       ConfigError);
  CHECK_THROWS_WITH_AS(with("norm_placement: middle\n"),
                       doctest::Contains("model.norm_placement: expected one of pre, post, found middle"),
                       ConfigError);
  CHECK_THROWS_WITH_AS(with("attention: {wq: identiy}\n"),
                       doctest::Contains("did you mean 'identity'?"), ConfigError);
  CHECK_THROWS_WITH_AS(with("attention: {projections: none, wq: learned}\n"),
                       doctest::Contains("model.attention.wq: cannot be combined with projections: none"),
                       ConfigError);
  CHECK_THROWS_WITH_AS(with("attention: {wv: identity, wo: none}\n"),
                       doctest::Contains("model.attention.wo: MultiHeadAttention (d_model 8, heads 2"),
                       ConfigError);
  CHECK_THROWS_WITH_AS(with("attention: {wv: identity, wo: none}\n"),
                       doctest::Contains("without wo the heads side by side are the output"), ConfigError);
  CHECK_THROWS_WITH_AS(build("d_model: 10\nheads: 4\nlayers: 1\n"),
                       doctest::Contains("wq and wk, learned or frozen, need d_model divisible by heads"),
                       ConfigError);
  CHECK_THROWS_WITH_AS(with("dropout: 1.5\n"),
                       doctest::Contains("model.dropout: expected a rate in [0, 1), found 1.5"),
                       ConfigError);
  CHECK_THROWS_WITH_AS(with("activation: swish\n"),
                       doctest::Contains("model.activation: expected one of gelu, relu, found swish"),
                       ConfigError);
  CHECK_THROWS_WITH_AS(build("d_model: 8\nlayers: 1\n"),
                       doctest::Contains("model.heads: required key is missing"), ConfigError);
  CHECK_THROWS_WITH_AS(build("d_model: 8\nheads: 2\nlayers: 0\n"),
                       doctest::Contains("model.layers: expected at least one layer, found 0"),
                       ConfigError);
  CHECK_THROWS_WITH_AS(with("ffn: {type: none, hidden: 3}\n"),
                       doctest::Contains("unknown key 'model.ffn.hidden'"), ConfigError);
}

TEST_CASE("build_model: an unknown type in any slot names the known types and the closest") {
  const LayerRegistry registry = registry_with_gain();
  for (const auto& [key, typo, closest] :
       std::vector<std::tuple<std::string, std::string, std::string>>{
           {"positional", "sinusoidal_position", "sinusoidal_positions"},
           {"norm", "layer_nrom", "layer_norm"},
           {"attention", "multi_head_atention", "multi_head_attention"},
           {"ffn", "nothing", ""}}) {
    CAPTURE(key);
    const std::string message = "model." + key + ".type: unknown layer type '" + typo + "' " +
                                kKnownList;
    CHECK_THROWS_WITH_AS(build(kBase + key + ": {type: " + typo + "}\n", registry),
                         doctest::Contains(message.c_str()), ConfigError);
    if (!closest.empty()) {
      CHECK_THROWS_WITH_AS(build(kBase + key + ": " + typo + "\n", registry),
                           doctest::Contains((message + "; did you mean '" + closest + "'?").c_str()),
                           ConfigError);
    }
  }
}

TEST_CASE("read_transformer_options: old spellings say what replaced them") {
  auto read = [](const std::string& extra) { return read_transformer_options(test::model_config(kBase + extra)); };
  for (const std::string placement : {"pre", "post"}) {
    CAPTURE(placement);
    CHECK_THROWS_WITH_AS(read("norm: " + placement + "\n"),
                         doctest::Contains(("model.norm: names the norm layer now (e.g. `norm: "
                                            "layer_norm`); the placement " + placement +
                                            " moved to model.norm_placement (`norm_placement: " +
                                            placement + "`)")
                                               .c_str()),
                         ConfigError);
  }
  CHECK_THROWS_WITH_AS(read("positional: learned\n"),
                       doctest::Contains("model.positional: 'learned' is the old name; did you mean "
                                         "'learned_positions'? (the built-in positional layer types "
                                         "are learned_positions and sinusoidal_positions)"),
                       ConfigError);
  CHECK_THROWS_WITH_AS(read("positional: {type: sinusoidal}\n"),
                       doctest::Contains("did you mean 'sinusoidal_positions'?"), ConfigError);
  CHECK_THROWS_WITH_AS(read("attention: none\n"),
                       doctest::Contains("model.attention: cannot be none (only model.ffn can be left out)"),
                       ConfigError);
  CHECK_THROWS_WITH_AS(read("norm: {type: ''}\n"),
                       doctest::Contains("model.norm: expected a layer type name, found an empty one"),
                       ConfigError);
  CHECK_NOTHROW(read("norm_placement: post\npositional: sinusoidal_positions\nffn: none\n"));
}

TEST_CASE("build_model: the attention slot needs an attention layer") {
  CHECK_THROWS_WITH_AS(build(kBase + "attention: feed_forward\n"),
                       doctest::Contains("model.attention.type: layer type 'feed_forward' is not an "
                                         "attention layer (the attention slot needs a layer derived "
                                         "from AttentionLayer"),
                       ConfigError);
}
