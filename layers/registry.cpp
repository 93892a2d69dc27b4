// LayerRegistry: name -> factory, with helpful errors, and the built-in layer types.
#include "layers/registry.hpp"

#include <stdexcept>

namespace qkv::layers {

void LayerRegistry::add(const std::string& type, LayerFactory factory) {
  if (type.empty()) throw std::invalid_argument("layer registry: the type name is empty");
  if (!factory) {
    throw std::invalid_argument("layer registry: the factory for '" + type + "' is empty");
  }
  if (!factories_.emplace(type, std::move(factory)).second) {
    throw std::invalid_argument("layer registry: layer type '" + type +
                                "' is already registered (each name can be registered once)");
  }
}

bool LayerRegistry::contains(const std::string& type) const {
  return factories_.count(type) != 0;
}

std::vector<std::string> LayerRegistry::types() const {
  std::vector<std::string> out;
  for (const auto& entry : factories_) out.push_back(entry.first);
  return out;  // std::map keeps them sorted
}

std::shared_ptr<Layer> LayerRegistry::create(const ConfigNode& node, const LayerContext& context,
                                             core::Rng& rng) const {
  return create(node.get<std::string>("type"), node, context, rng);
}

std::shared_ptr<Layer> LayerRegistry::create(const std::string& type, const ConfigNode& node,
                                             const LayerContext& context, core::Rng& rng) const {
  const auto it = factories_.find(type);
  if (it == factories_.end()) {
    std::string message = "unknown layer type '" + type + "' (known types:";
    const std::vector<std::string> known = types();
    for (const auto& name : known) message += " " + name;
    message += ")";
    const std::string suggestion = closest_match(type, known);
    if (!suggestion.empty()) message += "; did you mean '" + suggestion + "'?";
    node.fail("type", message);
  }
  std::shared_ptr<Layer> layer = it->second(node, context, rng);
  if (!layer) node.fail("type", "the factory for layer type '" + type + "' returned no layer");
  return layer;
}

namespace {

std::shared_ptr<Layer> make_feed_forward(const ConfigNode& node, const LayerContext& context,
                                         core::Rng& rng) {
  FeedForwardOptions options;
  options.dim = context.d_model;
  options.hidden = node.get<std::size_t>("hidden", context.d_ff);
  node.require(options.hidden > 0, "hidden", "a positive width");
  options.activation = parse_activation(node.get_choice(
      "activation", {"gelu", "relu"}, activation_name(context.activation)));
  return std::make_shared<FeedForward>(options, rng);
}

}  // namespace

void register_builtin_layers(LayerRegistry& registry) {
  registry.add("feed_forward", make_feed_forward);
}

LayerRegistry& layer_registry() {
  static LayerRegistry registry = [] {
    LayerRegistry built;
    register_builtin_layers(built);
    return built;
  }();
  return registry;
}

RegisterLayer::RegisterLayer(const std::string& type, LayerFactory factory) {
  layer_registry().add(type, std::move(factory));
}

}  // namespace qkv::layers
