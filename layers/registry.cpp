// LayerRegistry: name -> factory, with errors that name the config section.
#include "layers/registry.hpp"

#include <stdexcept>

#include "layers/builtin_layers.hpp"
#include "strict_yaml/closest_match.hpp"
#include "strict_yaml/text.hpp"

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

std::shared_ptr<Layer> LayerRegistry::create(const TypedSection& section,
                                             const LayerContext& context, core::Rng& rng) const {
  const ConfigNode& options = section.options;
  const std::string& type = section.type;
  // Read (and so record) the type in the section itself: that is what a writer of the
  // section writes, so it must be the type built.
  const std::string recorded = options.get<std::string>("type", type);
  if (recorded != type) {
    options.fail("type", "the section names layer type '" + quote_for_message(recorded) + "' but '" +
                             quote_for_message(type) +
                             "' was asked for");
  }
  const auto it = factories_.find(type);
  if (it == factories_.end()) {
    std::string message = "unknown layer type '" + quote_for_message(type) + "' (known types:";
    const std::vector<std::string> known = types();
    for (const auto& name : known) message += " " + name;
    message += ")";
    const std::string suggestion = closest_match(type, known);
    if (!suggestion.empty()) message += "; did you mean '" + suggestion + "'?";
    options.fail("type", message);
  }
  std::shared_ptr<Layer> layer;
  try {
    layer = it->second(options, context, rng);
  } catch (const std::invalid_argument& e) {
    options.fail("type", "layer type '" + type + "': " + e.what());
  }
  if (!layer) options.fail("type", "the factory for layer type '" + type + "' returned no layer");
  return layer;
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
