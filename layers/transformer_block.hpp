// TransformerBlock: attention and a feed-forward sublayer, each with a residual connection
// and a LayerNorm.
//
//   pre-LN (default, the reference):  x = x + drop(attn(ln1(x)));  x = x + drop(ffn(ln2(x)))
//   post-LN (the 2017 original):      x = ln1(x + drop(attn(x)));  x = ln2(x + drop(ffn(x)))
//   attention-only (no ffn):          the second line and ln2 are left out
// `drop` is residual dropout (training mode only). Children, in order: `ln1`, `attn`,
// `ln2`, `ffn` (so `attn.wq.weight`, `ffn.fc1.weight`, ...). The ffn is any Layer mapping
// (B, T, C) -> (B, T, C): the built-in FeedForward or a user's layer from the registry.
//
//   TransformerBlockOptions o;
//   o.attention.d_model = 64; o.attention.heads = 4;
//   o.ffn = feed_forward_builder({64, 256, Activation::gelu});
//   TransformerBlock block(o, rng);
//   Tensor y = block.forward(x);   // (B, T, 64) -> (B, T, 64)
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "core/random.hpp"
#include "layers/attention.hpp"
#include "layers/feed_forward.hpp"
#include "layers/layer.hpp"
#include "layers/layer_norm.hpp"

namespace qkv::layers {

enum class NormPlacement { pre, post };

// Builds a block's ffn when the block is built, so its weights are drawn after the
// attention's. dropout_rng is the generator for dropout in training mode (may be null when
// the model has no dropout).
using LayerBuilder =
    std::function<std::shared_ptr<Layer>(core::Rng& init_rng, core::Rng* dropout_rng)>;

LayerBuilder feed_forward_builder(const FeedForwardOptions& options);

struct TransformerBlockOptions {
  MultiHeadAttentionOptions attention;  // its d_model is the block's width
  NormPlacement norm = NormPlacement::pre;
  LayerBuilder ffn;                     // empty: attention-only block
  double dropout = 0.0;                 // residual dropout, training mode only
  core::Rng* dropout_rng = nullptr;     // must outlive the block; required when dropout > 0
};

class TransformerBlock : public Module {
 public:
  TransformerBlock(const TransformerBlockOptions& options, core::Rng& rng);

  // key_padding: B·T bytes, nonzero = padding key (see MultiHeadAttention).
  Tensor forward(const Tensor& x, const std::vector<std::uint8_t>* key_padding = nullptr);

  MultiHeadAttention& attention() { return *attn_; }
  const MultiHeadAttention& attention() const { return *attn_; }
  Layer* ffn() const { return ffn_.get(); }  // null for an attention-only block
  const TransformerBlockOptions& options() const { return options_; }

 private:
  Tensor residual(const Tensor& branch);  // residual dropout of a sublayer's output

  TransformerBlockOptions options_;
  std::shared_ptr<LayerNorm> ln1_;
  std::shared_ptr<MultiHeadAttention> attn_;
  std::shared_ptr<LayerNorm> ln2_;
  std::shared_ptr<Layer> ffn_;
};

}  // namespace qkv::layers
