// LayerRegistry: `type:` names in a config -> factories that build the layer from its
// config section, so every slot of a model config can name built-in and user-defined
// layers alike:
//
//   model:
//     attention: {type: multi_head_attention, wq: identity}
//     ffn: {type: gated_ffn, hidden: 128}
//
// One factory type serves every slot. A factory reads its own keys through the ConfigNode
// it is given (so a misspelled key is caught by finish(), and every default it falls back
// on is recorded and later written out by ConfigWriter::set_section) and takes the
// model-wide settings from LayerContext. An unknown type is a ConfigError naming the config
// path, the known types and the closest match; a factory's std::invalid_argument becomes a
// ConfigError naming the section; registering a name twice is a std::invalid_argument.
//
// The built-in layers (builtin_layers.hpp) are registered by an explicit call inside
// layer_registry(), not by static objects, which a static library's linker would drop. A
// user's layer registers with one line in its own .cpp (link that .cpp's object into the
// program, e.g. as an OBJECT library or a source of the executable):
//
//   static const qkv::layers::RegisterLayer registration("gated_ffn", make_gated_ffn);
//
// where make_gated_ffn is a LayerFactory:
//
//   std::shared_ptr<Layer> make_gated_ffn(const ConfigNode& options, const LayerContext& context,
//                                         core::Rng& rng) {
//     return std::make_shared<GatedFfn>(context.d_model,
//                                       options.get<std::size_t>("hidden", context.d_ff), rng);
//   }
//
// A layer for the attention slot derives from AttentionLayer (layer.hpp); a layer with
// dropout draws it from context.dropout_rng, the model's generator.
#pragma once

#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/random.hpp"
#include "layers/feed_forward.hpp"
#include "layers/layer.hpp"
#include "strict_yaml/config_node.hpp"

namespace qkv::layers {

using qkv::ConfigNode;
using qkv::TypedSection;

// What a factory may use besides its own keys: the model-wide settings (the `model:`
// section's typed keys, and the task's longest sequence).
struct LayerContext {
  std::size_t d_model = 0;                   // C, the width of the residual stream
  std::size_t heads = 0;                     // the model's `heads`
  std::size_t d_ff = 0;                      // the model's `d_ff`
  Activation activation = Activation::gelu;  // the model's `activation`
  double dropout = 0.0;                      // the model's `dropout`
  std::size_t max_len = 0;                   // the longest sequence the model sees
  core::Rng* dropout_rng = nullptr;          // for dropout in training mode (model-owned)
};

// `options` is the layer's section (its `type:` already read); `rng` draws initial weights.
using LayerFactory = std::function<std::shared_ptr<Layer>(
    const ConfigNode& options, const LayerContext& context, core::Rng& rng)>;

class LayerRegistry {
 public:
  // Throws std::invalid_argument if `type` is empty, taken, or the factory is empty.
  void add(const std::string& type, LayerFactory factory);
  bool contains(const std::string& type) const;
  std::vector<std::string> types() const;  // sorted

  // Builds the layer `section.type` names, from its options.
  std::shared_ptr<Layer> create(const TypedSection& section, const LayerContext& context,
                                core::Rng& rng) const;

 private:
  std::map<std::string, LayerFactory> factories_;
};

// The process-wide registry, with the built-ins, that build_model uses by default.
LayerRegistry& layer_registry();

// Registers a layer type with the process-wide registry when constructed: one static
// object per user layer.
struct RegisterLayer {
  RegisterLayer(const std::string& type, LayerFactory factory);
};

}  // namespace qkv::layers
