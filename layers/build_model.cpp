// The model section: YAML -> TransformerOptions -> YAML, and the one build of a Transformer.
#include "layers/build_model.hpp"

#include <string>

namespace qkv::layers {

namespace {

// A slot's section; `none` only where a slot may be left out (the ffn).
TypedSection read_slot(const ConfigNode& model, const std::string& key,
                       const std::string& default_type, bool may_be_none) {
  TypedSection slot = model.section(key, default_type);
  if (slot.type.empty()) model.fail(key, "expected a layer type name, found an empty one");
  if (slot.type == "none" && !may_be_none) {
    model.fail(key, "cannot be none (only model.ffn can be left out)");
  }
  return slot;
}

// `norm:` used to be the placement; it names the norm layer now.
TypedSection read_norm(const ConfigNode& model, const std::string& default_type) {
  TypedSection norm = read_slot(model, "norm", default_type, false);
  if (norm.type == "pre" || norm.type == "post") {
    model.fail("norm", "names the norm layer now (e.g. `norm: layer_norm`); the placement " +
                           norm.type + " moved to model.norm_placement (`norm_placement: " +
                           norm.type + "`)");
  }
  return norm;
}

// `positional: learned | sinusoidal` are the old names of the built-in types.
TypedSection read_positional(const ConfigNode& model, const std::string& default_type) {
  TypedSection positional = read_slot(model, "positional", default_type, false);
  if (positional.type == "learned" || positional.type == "sinusoidal") {
    model.fail("positional", "'" + positional.type + "' is the old name; did you mean '" +
                                 positional.type +
                                 "_positions'? (the built-in positional layer types are "
                                 "learned_positions and sinusoidal_positions)");
  }
  return positional;
}

// The built-in attention with its projections as they default (learned) splits d_model
// between the heads. Checked here, at model.heads, rather than by the layer's factory,
// which knows only its own section: an error there was blamed on that section's source
// (--set, when an override had made it) for a file's heads.
void check_heads_divide(const ConfigNode& model, const TransformerOptions& o) {
  if (o.attention.type != "multi_head_attention") return;
  for (const char* key : {"projections", "qk", "wq", "wk", "wv"})
    if (o.attention.options.has(key)) return;  // the factory checks what these make of it
  model.require(o.d_model % o.heads == 0, "heads",
                "a divisor of model.d_model (" + std::to_string(o.d_model) +
                    "): wq and wk, learned or frozen, need d_model divisible by heads");
}

std::string at_most(std::size_t limit) {
  return "at most " + std::to_string(limit) + " (layers/build_model.hpp)";
}

}  // namespace

TransformerOptions read_transformer_options(const ConfigNode& model) {
  const TransformerOptions defaults;
  TransformerOptions o;
  o.d_model = model.get<std::size_t>("d_model");
  model.require(o.d_model > 0, "d_model", "a positive width");
  model.require(o.d_model <= kMaxModelWidth, "d_model", at_most(kMaxModelWidth));
  o.heads = model.get<std::size_t>("heads");
  model.require(o.heads > 0, "heads", "a positive number of heads");
  model.require(o.heads <= kMaxHeads, "heads", at_most(kMaxHeads));
  o.layers = model.get<std::size_t>("layers");
  model.require(o.layers > 0, "layers", "at least one layer");
  model.require(o.layers <= kMaxLayers, "layers", at_most(kMaxLayers));
  o.d_ff = model.get<std::size_t>("d_ff", 4 * o.d_model);
  model.require(o.d_ff > 0, "d_ff", "a positive width");
  model.require(o.d_ff <= kMaxHiddenWidth, "d_ff", at_most(kMaxHiddenWidth));
  o.activation = parse_activation(
      model.get_choice("activation", {"gelu", "relu"}, activation_name(defaults.activation)));
  o.dropout = model.get<double>("dropout", defaults.dropout);
  model.require(o.dropout >= 0.0 && o.dropout < 1.0, "dropout", "a rate in [0, 1)");
  o.norm_placement = model.get_choice("norm_placement", {"pre", "post"},
                                      norm_placement_name(defaults.norm_placement)) == "pre"
                         ? NormPlacement::pre
                         : NormPlacement::post;
  o.positional = read_positional(model, defaults.positional.type);
  o.norm = read_norm(model, defaults.norm.type);
  o.attention = read_slot(model, "attention", defaults.attention.type, false);
  o.ffn = read_slot(model, "ffn", defaults.ffn.type, true);
  check_heads_divide(model, o);
  model.finish();  // the slots' keys are left to their factories (see build_model)
  return o;
}

void write_transformer_options(const TransformerOptions& options, ConfigWriter& out) {
  out.set("d_model", options.d_model);
  out.set("heads", options.heads);
  out.set("layers", options.layers);
  out.set("d_ff", options.d_ff);
  out.set("activation", activation_name(options.activation));
  out.set("dropout", options.dropout);
  out.set("norm_placement", norm_placement_name(options.norm_placement));
  out.set_section("positional", options.positional);
  out.set_section("norm", options.norm);
  out.set_section("attention", options.attention);
  // An unbuilt slot records nothing, so `none` is written as itself.
  if (options.ffn.type == "none") {
    out.set("ffn", "none");
  } else {
    out.set_section("ffn", options.ffn);
  }
}

std::shared_ptr<Transformer> build_model(const TransformerOptions& options, std::size_t vocab,
                                         std::size_t max_len, core::Rng& rng,
                                         const LayerRegistry& registry) {
  auto model = std::make_shared<Transformer>(options, vocab, max_len, rng, registry);
  // Each slot's factory has read its keys by now, so any other key there is a misspelling.
  for (const TypedSection* slot :
       {&options.positional, &options.norm, &options.attention, &options.ffn}) {
    slot->options.finish();
  }
  return model;
}

}  // namespace qkv::layers
