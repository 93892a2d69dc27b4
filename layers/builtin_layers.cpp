// The built-in layer factories: each reads its own keys and builds its layer.
#include "layers/builtin_layers.hpp"

#include <stdexcept>
#include <string>
#include <vector>

#include "layers/attention.hpp"
#include "layers/build_model.hpp"
#include "layers/feed_forward.hpp"
#include "layers/layer_norm.hpp"
#include "layers/positional_encoding.hpp"

namespace qkv::layers {

namespace {

std::shared_ptr<Layer> make_learned_positions(const ConfigNode&, const LayerContext& context,
                                              core::Rng& rng) {
  return std::make_shared<LearnedPositionalEmbedding>(context.max_len, context.d_model, rng);
}

std::shared_ptr<Layer> make_sinusoidal_positions(const ConfigNode&, const LayerContext& context,
                                                 core::Rng&) {
  return std::make_shared<SinusoidalPositionalEncoding>(context.max_len, context.d_model);
}

std::shared_ptr<Layer> make_layer_norm(const ConfigNode& options, const LayerContext& context,
                                       core::Rng&) {
  const double eps = options.get<double>("eps", 1e-5);
  options.require(eps > 0.0, "eps", "a positive number");
  return std::make_shared<LayerNorm>(context.d_model, eps);
}

Projection read_projection(const ConfigNode& options, const std::string& key) {
  const std::string p = options.get_choice(key, {"learned", "identity", "frozen"}, "learned");
  return p == "learned" ? Projection::learned
                        : p == "frozen" ? Projection::frozen : Projection::identity;
}

QkForm read_qk_form(const ConfigNode& options) {
  const std::string form = options.get_choice("qk", {"separate", "merged", "tied"}, "separate");
  return form == "merged" ? QkForm::merged : form == "tied" ? QkForm::tied : QkForm::separate;
}

// Keys that must not be given in this form of attention, and why.
void refuse(const ConfigNode& options, const std::vector<const char*>& keys,
            const std::string& why) {
  for (const char* key : keys)
    if (options.has(key)) options.fail(key, "cannot be combined with " + why);
}

MultiHeadAttentionOptions read_attention(const ConfigNode& options, const LayerContext& context) {
  MultiHeadAttentionOptions o;
  const bool none = options.get_choice("projections", {"learned", "none"}, "learned") == "none";
  if (none) {
    o = MultiHeadAttentionOptions::no_projections(context.d_model, context.heads);
    refuse(options, {"wq", "wk", "wv", "wo", "qk"},
           "projections: none (which means Q = K = V = x and no wo)");
  } else {
    o.d_model = context.d_model;
    o.heads = context.heads;
    o.qk = read_qk_form(options);
    // merged has no wq or wk; tied makes keys with wq. Neither reads the keys it has no
    // use for, so the resolved config written out does not hold them either.
    if (o.qk == QkForm::merged) {
      refuse(options, {"wq", "wk"}, "qk: merged (one learned d_model x d_model matrix per "
                                    "head replaces wq and wk)");
    } else if (o.qk == QkForm::tied) {
      refuse(options, {"wk"}, "qk: tied (the keys are made by wq, so wk = wq)");
      o.wq = o.wk = read_projection(options, "wq");
      if (o.wq == Projection::identity) {
        options.fail("wq", "qk: tied needs wq learned or frozen (identity on both sides is "
                           "wq: identity, wk: identity)");
      }
    } else {
      o.wq = read_projection(options, "wq");
      o.wk = read_projection(options, "wk");
    }
    o.wv = read_projection(options, "wv");
    const std::string wo = options.get_choice("wo", {"learned", "frozen", "none"}, "learned");
    o.wo = wo == "learned" ? Projection::learned
                           : wo == "frozen" ? Projection::frozen : Projection::identity;
  }
  o.causal = options.get<bool>("causal", true);
  o.dropout = options.get<double>("dropout", context.dropout);
  options.require(o.dropout >= 0.0 && o.dropout < 1.0, "dropout", "a rate in [0, 1)");
  try {
    attention_shape(o);
  } catch (const std::invalid_argument& e) {
    options.fail(none ? "projections" : o.qk == QkForm::separate ? "wo" : "qk", e.what());
  }
  return o;
}

std::shared_ptr<Layer> make_multi_head_attention(const ConfigNode& options,
                                                 const LayerContext& context, core::Rng& rng) {
  return std::make_shared<MultiHeadAttention>(read_attention(options, context), rng,
                                              context.dropout_rng);
}

std::shared_ptr<Layer> make_feed_forward(const ConfigNode& options, const LayerContext& context,
                                         core::Rng& rng) {
  FeedForwardOptions o;
  o.dim = context.d_model;
  o.hidden = options.get<std::size_t>("hidden", context.d_ff);
  options.require(o.hidden > 0, "hidden", "a positive width");
  options.require(o.hidden <= kMaxHiddenWidth, "hidden",
                  "at most " + std::to_string(kMaxHiddenWidth) + " (layers/build_model.hpp)");
  o.activation = parse_activation(options.get_choice(
      "activation", {"gelu", "relu"}, activation_name(context.activation)));
  return std::make_shared<FeedForward>(o, rng);
}

}  // namespace

void register_builtin_layers(LayerRegistry& registry) {
  registry.add("learned_positions", make_learned_positions);
  registry.add("sinusoidal_positions", make_sinusoidal_positions);
  registry.add("layer_norm", make_layer_norm);
  registry.add("multi_head_attention", make_multi_head_attention);
  registry.add("feed_forward", make_feed_forward);
}

}  // namespace qkv::layers
