// Layer: a Module that maps one activation tensor to another, usually (B, T, C) -> (B, T, C).
//
// This is the interface the registry builds by `type:` name (a block's `ffn:`), so that a
// user's layer can stand wherever a built-in one does. Linear, LayerNorm, FeedForward and
// MultiHeadAttention are Layers; Embedding (token ids in) and the Transformer are not.
//
//   std::shared_ptr<Layer> ffn = std::make_shared<FeedForward>(options, rng);
//   Tensor y = ffn->forward(x);   // one virtual call per layer, never per element
#pragma once

#include "layers/module.hpp"

namespace qkv::layers {

class Layer : public Module {
 public:
  virtual Tensor forward(const Tensor& x) = 0;
};

}  // namespace qkv::layers
