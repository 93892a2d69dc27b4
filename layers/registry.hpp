// LayerRegistry: `type:` names in a config -> factories that build the layer from its
// config node, so a model config can name built-in and user-defined layers alike:
//
//   model:
//     ffn: {type: gated_ffn, hidden: 128}    # a block's ffn, built by name
//
// A factory reads its own keys through the ConfigNode (so a misspelled key is caught by
// finish()) and may fall back on model-wide defaults in LayerContext. An unknown type is a
// ConfigError naming the config path, the known types and the closest match; registering
// a name twice is a std::invalid_argument.
//
// Built-in layers (`feed_forward`) are registered by an explicit call inside
// layer_registry(), not by static objects, which a static library's linker would drop. A
// user's layer registers with one line in its own .cpp (link that .cpp's object into the
// program, e.g. as an OBJECT library or a source of the executable):
//
//   static const qkv::layers::RegisterLayer registration("gated_ffn", make_gated_ffn);
//
// where make_gated_ffn is a LayerFactory:
//
//   std::shared_ptr<Layer> make_gated_ffn(const ConfigNode& node, const LayerContext& context,
//                                         core::Rng& rng) {
//     return std::make_shared<GatedFfn>(context.d_model, node.get<std::size_t>("hidden"), rng);
//   }
#pragma once

#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/random.hpp"
#include "strict_yaml/config_node.hpp"
#include "layers/feed_forward.hpp"
#include "layers/layer.hpp"

namespace qkv::layers {

using qkv::ConfigNode;

// What a factory may use besides its own keys: the width of the stream it sits in and the
// model-wide settings that built-in layers fall back on.
struct LayerContext {
  std::size_t d_model = 0;
  std::size_t d_ff = 0;                      // the model's `d_ff`
  Activation activation = Activation::gelu;  // the model's `activation`
  double dropout = 0.0;                      // the model's `dropout`
  core::Rng* dropout_rng = nullptr;          // for dropout in training mode (model-owned)
};

using LayerFactory = std::function<std::shared_ptr<Layer>(
    const ConfigNode& node, const LayerContext& context, core::Rng& rng)>;

class LayerRegistry {
 public:
  // Throws std::invalid_argument if `type` is empty, taken, or the factory is empty.
  void add(const std::string& type, LayerFactory factory);
  bool contains(const std::string& type) const;
  std::vector<std::string> types() const;  // sorted

  // Builds the layer named by the node's `type:` key (required), or by `type` with the
  // node holding its options (the node's own `type:` key, if any, is then not read).
  std::shared_ptr<Layer> create(const ConfigNode& node, const LayerContext& context,
                                core::Rng& rng) const;
  std::shared_ptr<Layer> create(const std::string& type, const ConfigNode& node,
                                const LayerContext& context, core::Rng& rng) const;

 private:
  std::map<std::string, LayerFactory> factories_;
};

// Adds the built-in types: `feed_forward` (keys: hidden = context.d_ff, activation =
// context.activation).
void register_builtin_layers(LayerRegistry& registry);

// The process-wide registry, with the built-ins, that build_model uses by default.
LayerRegistry& layer_registry();

// Registers a layer type with the process-wide registry when constructed: one static
// object per user layer.
struct RegisterLayer {
  RegisterLayer(const std::string& type, LayerFactory factory);
};

}  // namespace qkv::layers
