// Layer registry and build_model: types by name with helpful errors, user layers from a
// config, and the `model:` schema read strictly (misspellings, impossible combinations).
#include <doctest/doctest.h>

#include <memory>
#include <string>
#include <vector>

#include "core/ops.hpp"
#include "layers/build_model.hpp"
#include "layers/registry.hpp"
#include "layer_test_util.hpp"

using namespace qkv;
using namespace qkv::layers;
using core::Tensor;

namespace {

// A user layer: y = gain * x, with `gain` read from its config node.
class Gain : public Layer {
 public:
  Gain(std::size_t dim, double gain) {
    gain_ = register_parameter("gain", Tensor::full({dim}, gain), ParamKind::norm);
  }
  Tensor forward(const Tensor& x) override { return core::mul(x, gain_); }

 private:
  Tensor gain_;
};

std::shared_ptr<Layer> make_gain(const ConfigNode& node, const LayerContext& context, core::Rng&) {
  return std::make_shared<Gain>(context.d_model, node.get<double>("gain", 1.0));
}

LayerRegistry registry_with_gain() {
  LayerRegistry registry;
  register_builtin_layers(registry);
  registry.add("gain", make_gain);
  return registry;
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

const char* kBase = "d_model: 8\nheads: 2\nlayers: 1\n";

}  // namespace

TEST_CASE("registry: unknown types list the known ones and the closest match") {
  const LayerRegistry registry = registry_with_gain();
  CHECK(registry.types() == std::vector<std::string>{"feed_forward", "gain"});
  core::Rng rng(1);
  LayerContext context;
  context.d_model = 8;
  context.d_ff = 16;
  const ConfigNode node = test::config("type: feed_foward\n", "model.ffn");
  CHECK_THROWS_WITH_AS(registry.create(node, context, rng),
                       doctest::Contains("model.ffn.type: unknown layer type 'feed_foward' (known "
                                         "types: feed_forward gain); did you mean 'feed_forward'?"),
                       ConfigError);
  CHECK_THROWS_WITH_AS(registry.create(node, context, rng), doctest::Contains("test.yaml:1:7"),
                       ConfigError);
  CHECK_THROWS_WITH_AS(registry.create(test::config("type: lstm\n", "model.ffn"), context, rng),
                       doctest::Contains("unknown layer type 'lstm' (known types: feed_forward gain)"),
                       ConfigError);
  CHECK_THROWS_WITH_AS(registry.create(test::config("hidden: 3\n", "model.ffn"), context, rng),
                       doctest::Contains("model.ffn.type: required key is missing"), ConfigError);
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
  CHECK(layer_registry().contains("feed_forward"));
  CHECK_THROWS_WITH_AS(RegisterLayer("feed_forward", make_gain),
                       doctest::Contains("layer type 'feed_forward' is already registered"),
                       std::invalid_argument);
}

TEST_CASE("registry: the built-in feed_forward reads hidden and activation, else the model's") {
  const LayerRegistry registry = registry_with_gain();
  core::Rng rng(2);
  LayerContext context;
  context.d_model = 8;
  context.d_ff = 16;
  context.activation = Activation::relu;
  auto plain = registry.create(test::config("type: feed_forward\n"), context, rng);
  auto* ffn = dynamic_cast<FeedForward*>(plain.get());
  REQUIRE(ffn != nullptr);
  CHECK(ffn->options().hidden == 16);
  CHECK(ffn->options().activation == Activation::relu);
  auto wide = registry.create(test::config("type: feed_forward\nhidden: 24\nactivation: gelu\n"),
                              context, rng);
  CHECK(dynamic_cast<FeedForward&>(*wide).options().hidden == 24);
  CHECK(dynamic_cast<FeedForward&>(*wide).options().activation == Activation::gelu);
}

TEST_CASE("build_model: a user layer named in the config becomes every block's ffn") {
  const LayerRegistry registry = registry_with_gain();
  core::Rng rng(3);
  auto transformer = build_model(
      test::config("d_model: 8\nheads: 2\nlayers: 2\nffn: {type: gain, gain: 0.5}\n"), 10, 6, rng,
      registry);
  CHECK(has_name(*transformer, "blocks.0.ffn.gain"));
  CHECK(has_name(*transformer, "blocks.1.ffn.gain"));
  CHECK(has_name(*transformer, "blocks.0.ln2.weight"));
  CHECK(transformer->state().at("blocks.0.ffn.gain").to_vector() == std::vector<double>(8, 0.5));
  CHECK(transformer->forward(test::random_ids({2, 6}, 10, 4)).shape() == core::Shape{2, 6, 10});
  // Its keys are checked like every other key.
  CHECK_THROWS_WITH_AS(
      build_model(test::config(std::string(kBase) + "ffn: {type: gain, gian: 0.5}\n"), 10, 6, rng,
                  registry),
      doctest::Contains("unknown key 'model.ffn.gian'; did you mean 'model.ffn.gain'?"), ConfigError);
  // The process-wide registry does not know test-local types.
  CHECK_THROWS_WITH_AS(build_model(test::config(std::string(kBase) + "ffn: {type: gain}\n"), 10, 6, rng),
                       doctest::Contains("unknown layer type 'gain'"), ConfigError);
}

TEST_CASE("build_model: defaults give the reference architecture") {
  core::Rng rng(5);
  auto model = build_model(test::config(kBase), 10, 6, rng);
  const TransformerOptions& o = model->options();
  CHECK(o.vocab == 10);
  CHECK(o.max_len == 6);
  CHECK(o.positional == Positional::learned);
  CHECK(o.block.norm == NormPlacement::pre);
  CHECK(o.block.attention.causal);
  CHECK(o.block.attention.wq == Projection::learned);
  CHECK(o.block.attention.wo);
  const auto& ffn = dynamic_cast<const FeedForward&>(*model->block(0).ffn());
  CHECK(ffn.options().hidden == 32);  // 4 * d_model
  CHECK(ffn.options().activation == Activation::gelu);
  CHECK(model->state().at("blocks.0.ffn.fc1.weight").shape() == core::Shape{32, 8});
}

TEST_CASE("build_model: every option is read from the config") {
  core::Rng rng(6);
  auto model = build_model(test::config(std::string(kBase) +
                                        "d_ff: 12\nactivation: relu\ndropout: 0.1\n"
                                        "positional: sinusoidal\nnorm: post\n"
                                        "attention: {wq: identity, wv: identity, causal: false}\n"),
                           10, 6, rng);
  const TransformerOptions& o = model->options();
  CHECK(o.positional == Positional::sinusoidal);
  CHECK_FALSE(has_name(*model, "pos_emb.weight"));
  CHECK(o.block.norm == NormPlacement::post);
  CHECK(o.dropout == 0.1);
  CHECK(o.block.dropout == 0.1);
  CHECK(o.block.attention.dropout == 0.1);  // follows the model's dropout unless given
  CHECK(o.block.attention.wq == Projection::identity);
  CHECK(o.block.attention.wk == Projection::learned);
  CHECK(o.block.attention.wv == Projection::identity);
  CHECK_FALSE(o.block.attention.causal);
  CHECK_FALSE(has_name(*model, "blocks.0.attn.wq.weight"));
  CHECK(model->state().at("blocks.0.attn.wk.weight").shape() == core::Shape{16, 8});  // H·C
  CHECK(model->state().at("blocks.0.attn.wo.weight").shape() == core::Shape{8, 16});
  const auto& ffn = dynamic_cast<const FeedForward&>(*model->block(0).ffn());
  CHECK(ffn.options().hidden == 12);
  CHECK(ffn.options().activation == Activation::relu);

  SUBCASE("projections none and attention-only") {
    auto bare = build_model(test::config(std::string(kBase) +
                                         "attention: {projections: none, dropout: 0.0}\nffn: none\n"),
                            10, 6, rng);
    CHECK(bare->block(0).ffn() == nullptr);
    CHECK(bare->block(0).attention().parameter_count() == 0);
    CHECK(bare->parameter_count() == 10 * 8 + 6 * 8 + 2 * 8 + 2 * 8 + 8 * 10 + 10);
  }
  SUBCASE("ffn options without a type are the built-in feed_forward's") {
    auto custom = build_model(test::config(std::string(kBase) + "ffn: {hidden: 20}\n"), 10, 6, rng);
    CHECK(custom->state().at("blocks.0.ffn.fc1.weight").shape() == core::Shape{20, 8});
  }
}

TEST_CASE("build_model: misspelled keys and impossible values are config errors") {
  core::Rng rng(7);
  auto build = [&](const std::string& extra) {
    return build_model(test::config(std::string(kBase) + extra), 10, 6, rng);
  };
  CHECK_THROWS_WITH_AS(build("positonal: sinusoidal\n"),
                       doctest::Contains("unknown key 'model.positonal'; did you mean 'model.positional'?"),
                       ConfigError);
  CHECK_THROWS_WITH_AS(build("attention: {wk: identity, casual: false}\n"),
                       doctest::Contains("did you mean 'model.attention.causal'?"), ConfigError);
  CHECK_THROWS_WITH_AS(build("norm: middle\n"),
                       doctest::Contains("model.norm: expected one of pre, post, found middle"),
                       ConfigError);
  CHECK_THROWS_WITH_AS(build("attention: {wq: identiy}\n"),
                       doctest::Contains("did you mean 'identity'?"), ConfigError);
  CHECK_THROWS_WITH_AS(build("attention: {projections: none, wq: learned}\n"),
                       doctest::Contains("model.attention.wq: cannot be combined with projections: none"),
                       ConfigError);
  CHECK_THROWS_WITH_AS(build("attention: {wv: identity, wo: none}\n"),
                       doctest::Contains("model.attention.wo: MultiHeadAttention (d_model 8, heads 2"),
                       ConfigError);
  CHECK_THROWS_WITH_AS(build("attention: {wv: identity, wo: none}\n"),
                       doctest::Contains("without wo the heads side by side are the output"), ConfigError);
  CHECK_THROWS_WITH_AS(build_model(test::config("d_model: 10\nheads: 4\nlayers: 1\n"), 10, 6, rng),
                       doctest::Contains("learned wq and wk need d_model divisible by heads"),
                       ConfigError);
  CHECK_THROWS_WITH_AS(build("dropout: 1.5\n"),
                       doctest::Contains("model.dropout: expected a rate in [0, 1), found 1.5"),
                       ConfigError);
  CHECK_THROWS_WITH_AS(build("ffn: nothing\n"),
                       doctest::Contains("model.ffn: expected one of none, found nothing"), ConfigError);
  CHECK_THROWS_WITH_AS(build_model(test::config("d_model: 8\nlayers: 1\n"), 10, 6, rng),
                       doctest::Contains("model.heads: required key is missing"), ConfigError);
  CHECK_THROWS_WITH_AS(build_model(test::config("d_model: 8\nheads: 2\nlayers: 0\n"), 10, 6, rng),
                       doctest::Contains("model.layers: expected at least one layer, found 0"),
                       ConfigError);
}
