// Layer: a Module that maps one activation tensor to another, usually (B, T, C) -> (B, T, C).
// AttentionLayer: a Layer that mixes positions, so it also takes the key-padding mask and
// can hand back its attention probabilities for inspection.
//
// These are the interfaces the registry builds by `type:` name, so that a user's layer can
// stand wherever a built-in one does: Linear, LayerNorm, FeedForward and the positional
// encodings are Layers, MultiHeadAttention is an AttentionLayer; Embedding (token ids in)
// and the Transformer are neither.
//
// Why attention is a class of its own rather than two more virtuals on Layer: padding only
// means something to a layer that looks across positions. With a padding-taking forward on
// every Layer, its default would either ignore the mask (a custom attention layer that
// forgot to override it would let padded keys leak, silently) or throw (only on the first
// padded batch, long after the model was built). As an AttentionLayer, a custom attention
// layer must say what padding means (forward(x, key_padding) is pure), and the attention
// slot of a model checks its layer is one when the model is built, naming the slot.
//
//   class Bilinear : public AttentionLayer {
//    public:
//     using AttentionLayer::forward;  // keep forward(x) visible next to the override
//     Tensor forward(const Tensor& x, const KeyPadding* key_padding) override {
//       Tensor p = ...;                       // probabilities (B, H, T, S)
//       if (capturing()) keep_attention_map(p);
//       return ...;                           // (B, T, C)
//     }
//   };
//   layer->capture_attention(true);
//   layer->forward(x);
//   Tensor maps = layer->attention_map();     // (B, H, T, S), detached
#pragma once

#include <cstdint>
#include <vector>

#include "layers/module.hpp"

namespace qkv::layers {

class Layer : public Module {
 public:
  virtual Tensor forward(const Tensor& x) = 0;  // one virtual call per layer, never per element
};

// B·S bytes for a batch of B sequences of S keys: nonzero = that key position is padding
// and is never attended to.
using KeyPadding = std::vector<std::uint8_t>;

class AttentionLayer : public Layer {
 public:
  // x (B, T, C) -> (B, T, C); key_padding may be null (no padding).
  virtual Tensor forward(const Tensor& x, const KeyPadding* key_padding) = 0;
  Tensor forward(const Tensor& x) final { return forward(x, nullptr); }

  // Inspection. While on, each forward keeps its attention probabilities.
  void capture_attention(bool on) { capture_ = on; }
  // The last kept probabilities (B, H, T, S), detached; undefined before the first
  // forward while capturing.
  const Tensor& attention_map() const { return attention_map_; }

 protected:
  bool capturing() const { return capture_; }
  // Keeps `probabilities` (B, H, T, S) as attention_map(), detached from the graph (throws
  // std::invalid_argument naming the shape when it is not 4-D).
  void keep_attention_map(const Tensor& probabilities);

 private:
  bool capture_ = false;
  Tensor attention_map_;
};

}  // namespace qkv::layers
