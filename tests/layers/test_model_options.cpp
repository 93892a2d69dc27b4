// The model section round trip: YAML -> read_transformer_options -> build_model (each slot's
// factory records the defaults it used) -> write_transformer_options -> YAML, which reads
// back to the same options field by field and slot by slot, writes the same text again,
// and builds the same weights.
#include <doctest/doctest.h>

#include <memory>
#include <string>

#include "core/ops.hpp"
#include "layers/build_model.hpp"
#include "layers/builtin_layers.hpp"
#include "layer_test_util.hpp"

using namespace qkv;
using namespace qkv::layers;
using core::Tensor;

namespace {

// A user ffn whose factory falls back on a default the config never mentions.
class Scale : public Layer {
 public:
  Scale(std::size_t dim, double scale) {
    scale_ = register_parameter("scale", Tensor::full({dim}, scale), ParamKind::norm);
  }
  Tensor forward(const Tensor& x) override { return core::mul(x, scale_); }

 private:
  Tensor scale_;
};

LayerRegistry registry_with_scale() {
  LayerRegistry registry;
  register_builtin_layers(registry);
  registry.add("scale", [](const ConfigNode& options, const LayerContext& context, core::Rng&) {
    return std::make_shared<Scale>(context.d_model, options.get<double>("scale", 2.0));
  });
  return registry;
}

struct Written {
  TransformerOptions options;
  std::shared_ptr<Transformer> model;
  std::string text;  // the whole file, `model:` and the section under it
};

// Reads the `model:` section of `file`, builds it (seed 3), and writes it back.
Written round_trip(const std::string& file, const LayerRegistry& registry) {
  Written w;
  w.options = read_transformer_options(ConfigNode::parse(file, "written.yaml").child("model"));
  core::Rng rng(3);
  w.model = build_model(w.options, 10, 6, rng, registry);
  ConfigWriter out;
  write_transformer_options(w.options, out.child("model"));
  w.text = out.str();
  return w;
}

// A slot as the writer writes it: its type, the keys it was given and the defaults read.
std::string resolved(const TypedSection& slot) {
  ConfigWriter out;
  out.set_section("slot", slot);
  return out.str();
}

void check_same_options(const TransformerOptions& a, const TransformerOptions& b) {
  CHECK(a.d_model == b.d_model);
  CHECK(a.heads == b.heads);
  CHECK(a.layers == b.layers);
  CHECK(a.d_ff == b.d_ff);
  CHECK(a.activation == b.activation);
  CHECK(a.dropout == b.dropout);
  CHECK(a.norm_placement == b.norm_placement);
  for (const auto& [x, y] : {std::pair{&a.positional, &b.positional}, std::pair{&a.norm, &b.norm},
                             std::pair{&a.attention, &b.attention}, std::pair{&a.ffn, &b.ffn}}) {
    CAPTURE(x->type);
    CHECK(x->type == y->type);
    CHECK(resolved(*x) == resolved(*y));
  }
}

void check_same_weights(const Transformer& a, const Transformer& b) {
  const auto x = a.state(), y = b.state();
  REQUIRE(x.size() == y.size());
  for (const auto& [name, value] : x) {
    CAPTURE(name);
    REQUIRE(y.count(name) == 1);
    CHECK(value.to_vector() == y.at(name).to_vector());
  }
}

}  // namespace

TEST_CASE("model options: every key given reads back from what was written") {
  const std::string given =
      "model:\n"
      "  d_model: 8\n  heads: 2\n  layers: 2\n  d_ff: 12\n  activation: relu\n  dropout: 0.1\n"
      "  norm_placement: post\n  positional: sinusoidal_positions\n  norm: {eps: 0.001}\n"
      "  attention: {wq: identity, causal: false}\n  ffn: {hidden: 20}\n";
  const Written first = round_trip(given, layer_registry());
  // Every typed key, and each slot with the defaults its factory used (`wk: learned`, the
  // attention's dropout from the model's, the ffn's activation from the model's).
  CHECK(first.text ==
        "model:\n"
        "  d_model: 8\n  heads: 2\n  layers: 2\n  d_ff: 12\n  activation: relu\n  dropout: 0.1\n"
        "  norm_placement: post\n"
        "  positional:\n    type: sinusoidal_positions\n"
        "  norm:\n    type: layer_norm\n    eps: 0.001\n"
        "  attention:\n    type: multi_head_attention\n    projections: learned\n    qk: separate\n"
        "    wq: identity\n    wk: learned\n    wv: learned\n    wo: learned\n"
        "    causal: false\n    dropout: 0.1\n"
        "  ffn:\n    type: feed_forward\n    hidden: 20\n    activation: relu\n");

  const Written second = round_trip(first.text, layer_registry());
  CHECK(second.text == first.text);
  check_same_options(first.options, second.options);
  CHECK(second.options.d_ff == 12);
  CHECK(second.options.activation == Activation::relu);
  CHECK(second.options.dropout == 0.1);
  CHECK(second.options.norm_placement == NormPlacement::post);
  CHECK(second.options.positional.type == "sinusoidal_positions");
  CHECK(resolved(second.options.norm) == "slot:\n  type: layer_norm\n  eps: 0.001\n");
  check_same_weights(*first.model, *second.model);
}

TEST_CASE("model options: the defaults are written out, so the file no longer depends on them") {
  const Written first =
      round_trip("model: {d_model: 8, heads: 2, layers: 1, ffn: none}\n", layer_registry());
  CHECK(first.text ==
        "model:\n"
        "  d_model: 8\n  heads: 2\n  layers: 1\n  d_ff: 32\n  activation: gelu\n  dropout: 0\n"
        "  norm_placement: pre\n"
        "  positional:\n    type: learned_positions\n"
        "  norm:\n    type: layer_norm\n    eps: 1e-05\n"
        "  attention:\n    type: multi_head_attention\n    projections: learned\n    qk: separate\n"
        "    wq: learned\n    wk: learned\n    wv: learned\n    wo: learned\n"
        "    causal: true\n    dropout: 0\n"
        "  ffn: none\n");
  const Written second = round_trip(first.text, layer_registry());
  CHECK(second.text == first.text);
  check_same_options(first.options, second.options);
  CHECK(second.options.ffn.type == "none");
  CHECK(second.model->block(0).ffn() == nullptr);
  check_same_weights(*first.model, *second.model);
}

TEST_CASE("model options: the qk forms and frozen matrices write only the keys they read") {
  for (const std::string& attention :
       {std::string("{qk: merged, wv: frozen}"), std::string("{qk: tied, wq: frozen}"),
        std::string("{wk: frozen, wo: frozen}")}) {
    CAPTURE(attention);
    const Written first = round_trip(
        "model: {d_model: 8, heads: 2, layers: 1, ffn: none, attention: " + attention + "}\n",
        layer_registry());
    const std::string slot = resolved(first.options.attention);
    if (attention.find("merged") != std::string::npos) {
      CHECK(slot == "slot:\n  type: multi_head_attention\n  projections: learned\n  qk: merged\n"
                    "  wv: frozen\n  wo: learned\n  causal: true\n  dropout: 0\n");
    } else if (attention.find("tied") != std::string::npos) {
      CHECK(slot == "slot:\n  type: multi_head_attention\n  projections: learned\n  qk: tied\n"
                    "  wq: frozen\n  wv: learned\n  wo: learned\n  causal: true\n  dropout: 0\n");
    }
    const Written second = round_trip(first.text, layer_registry());
    CHECK(second.text == first.text);
    check_same_options(first.options, second.options);
    check_same_weights(*first.model, *second.model);
    CHECK(second.model->buffer_count() == first.model->buffer_count());
  }
}

TEST_CASE("model options: a user layer's defaults are written although no config named them") {
  const LayerRegistry registry = registry_with_scale();
  const Written first = round_trip(
      "model:\n  d_model: 8\n  heads: 2\n  layers: 1\n  attention: {projections: none}\n"
      "  ffn: scale\n",
      registry);
  CHECK(resolved(first.options.ffn) == "slot:\n  type: scale\n  scale: 2\n");
  CHECK(resolved(first.options.attention) ==
        "slot:\n  type: multi_head_attention\n  projections: none\n  causal: true\n  dropout: 0\n");
  const Written second = round_trip(first.text, registry);
  CHECK(second.text == first.text);
  check_same_options(first.options, second.options);
  CHECK(second.model->state().at("blocks.0.ffn.scale").to_vector() == std::vector<double>(8, 2.0));
  check_same_weights(*first.model, *second.model);
}

TEST_CASE("model options: options made in code have the schema's defaults and write the same") {
  TransformerOptions in_code;
  in_code.d_model = 8;
  in_code.heads = 2;
  in_code.layers = 1;
  in_code.d_ff = 32;
  core::Rng rng(3);
  const auto model = build_model(in_code, 10, 6, rng);
  ConfigWriter out;
  write_transformer_options(in_code, out.child("model"));
  const Written from_yaml =
      round_trip("model: {d_model: 8, heads: 2, layers: 1, ffn: {type: feed_forward}}\n", layer_registry());
  CHECK(out.str() == from_yaml.text);
  check_same_options(in_code, from_yaml.options);
  check_same_weights(*model, *from_yaml.model);
}
