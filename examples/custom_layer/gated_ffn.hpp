// GatedFfn: a user-defined layer, the gated feed-forward of PaLM / LLaMA ("SwiGLU"):
//
//   y = down( silu(gate(x)) ⊙ up(x) )      gate, up: C -> hidden;  down: hidden -> C
//
// It is an ordinary qkv::layers::Layer (a Module with forward(Tensor)), so it can stand
// wherever the built-in feed_forward does. gated_ffn.cpp registers it under the type name
// `gated_ffn` with one line, after which a config selects it:
//
//   model:
//     ffn: {type: gated_ffn, hidden: 64}    # hidden defaults to the model's d_ff
//
// Parameters: gate.weight [hidden, C], gate.bias, up.weight, up.bias, down.weight
// [C, hidden], down.bias — all Linear, initialized like the built-in ones.
#pragma once

#include <cstddef>
#include <memory>

#include "core/random.hpp"
#include "layers/linear.hpp"
#include "layers/registry.hpp"

namespace example {

class GatedFfn : public qkv::layers::Layer {
 public:
  GatedFfn(std::size_t dim, std::size_t hidden, qkv::core::Rng& rng);

  qkv::core::Tensor forward(const qkv::core::Tensor& x) override;

 private:
  std::shared_ptr<qkv::layers::Linear> gate_, up_, down_;
};

// The registry's factory: reads `hidden` from the layer's config node.
std::shared_ptr<qkv::layers::Layer> make_gated_ffn(const qkv::ConfigNode& node,
                                                   const qkv::layers::LayerContext& context,
                                                   qkv::core::Rng& rng);

}  // namespace example
