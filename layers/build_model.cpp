// build_model: config section -> TransformerOptions (with an ffn built through the
// registry) -> Transformer.
#include "layers/build_model.hpp"

#include <stdexcept>
#include <string>

namespace qkv::layers {

namespace {

Projection read_projection(const ConfigNode& node, const std::string& key) {
  return node.get_choice(key, {"learned", "identity"}, "learned") == "learned"
             ? Projection::learned
             : Projection::identity;
}

MultiHeadAttentionOptions read_attention(const ConfigNode& attention, std::size_t d_model,
                                         std::size_t heads, double model_dropout) {
  MultiHeadAttentionOptions o;
  const bool none = attention.get_choice("projections", {"learned", "none"}, "learned") == "none";
  if (none) {
    o = MultiHeadAttentionOptions::no_projections(d_model, heads);
    for (const char* key : {"wq", "wk", "wv", "wo"}) {
      if (attention.has(key)) {
        attention.fail(key, "cannot be combined with projections: none (which means Q = K = V "
                            "= x and no wo)");
      }
    }
  } else {
    o.d_model = d_model;
    o.heads = heads;
    o.wq = read_projection(attention, "wq");
    o.wk = read_projection(attention, "wk");
    o.wv = read_projection(attention, "wv");
    o.wo = attention.get_choice("wo", {"learned", "none"}, "learned") == "learned";
  }
  o.causal = attention.get<bool>("causal", true);
  o.dropout = attention.get<double>("dropout", model_dropout);
  attention.require(o.dropout >= 0.0 && o.dropout < 1.0, "dropout", "a rate in [0, 1)");
  try {
    attention_shape(o);
  } catch (const std::invalid_argument& e) {
    attention.fail(none ? "projections" : "wo", e.what());
  }
  return o;
}

}  // namespace

std::shared_ptr<Transformer> build_model(const ConfigNode& model, std::size_t vocab,
                                         std::size_t max_len, core::Rng& rng,
                                         const LayerRegistry& registry) {
  const auto d_model = model.get<std::size_t>("d_model");
  model.require(d_model > 0, "d_model", "a positive width");
  const auto heads = model.get<std::size_t>("heads");
  model.require(heads > 0, "heads", "a positive number of heads");
  const auto layers = model.get<std::size_t>("layers");
  model.require(layers > 0, "layers", "at least one layer");
  const auto d_ff = model.get<std::size_t>("d_ff", 4 * d_model);
  model.require(d_ff > 0, "d_ff", "a positive width");
  const double dropout = model.get<double>("dropout", 0.0);
  model.require(dropout >= 0.0 && dropout < 1.0, "dropout", "a rate in [0, 1)");
  const Activation activation =
      parse_activation(model.get_choice("activation", {"gelu", "relu"}, "gelu"));

  TransformerOptions options;
  options.vocab = vocab;
  options.max_len = max_len;
  options.layers = layers;
  options.dropout = dropout;
  options.positional =
      model.get_choice("positional", {"learned", "sinusoidal"}, "learned") == "learned"
          ? Positional::learned
          : Positional::sinusoidal;
  options.block.norm = model.get_choice("norm", {"pre", "post"}, "pre") == "pre"
                           ? NormPlacement::pre
                           : NormPlacement::post;
  options.block.dropout = dropout;
  options.block.attention = read_attention(model.child("attention"), d_model, heads, dropout);

  // `ffn: none` (a scalar), or a mapping whose `type:` (default feed_forward) names a
  // registered layer.
  const YAML::Node ffn_yaml = model.yaml().IsMap() ? model.yaml()["ffn"] : YAML::Node();
  if (ffn_yaml.IsDefined() && ffn_yaml.IsScalar()) {
    model.get_choice("ffn", {"none"}, "none");
  } else {
    const ConfigNode ffn = model.child("ffn");
    const std::string type = ffn.get<std::string>("type", "feed_forward");
    LayerContext context;
    context.d_model = d_model;
    context.d_ff = d_ff;
    context.activation = activation;
    context.dropout = dropout;
    // Called once per block while the Transformer is built (registry is alive then).
    options.block.ffn = [ffn, type, context, &registry](core::Rng& init_rng,
                                                        core::Rng* dropout_rng) {
      LayerContext with_rng = context;
      with_rng.dropout_rng = dropout_rng;
      return registry.create(type, ffn, with_rng, init_rng);
    };
  }

  auto transformer = std::make_shared<Transformer>(options, rng);
  model.finish();
  return transformer;
}

}  // namespace qkv::layers
