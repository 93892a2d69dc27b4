// TransformerBlock: attention and a feed-forward sublayer, each with a residual connection
// and a norm.
//
//   pre-LN (default, the reference):  x = x + drop(attn(ln1(x)));  x = x + drop(ffn(ln2(x)))
//   post-LN (the 2017 original):      x = ln1(x + drop(attn(x)));  x = ln2(x + drop(ffn(x)))
//   attention-only (no ffn):          the second line and ln2 are left out
// `drop` is residual dropout (training mode only). Children, in order: `ln1`, `attn`,
// `ln2`, `ffn` (so `attn.wq.weight`, `ffn.fc1.weight`, ...). The block is handed its layers
// ready-made, so whoever builds them (the Transformer, through the registry) decides the
// order of their random draws; any Layer mapping (B, T, C) -> (B, T, C) may be a norm or
// the ffn, and any AttentionLayer the attention.
//
// Hook points (hooks.hpp; `blocks.<i>.<name>` in a Transformer), each (B, T, C), in
// forward order; the ones a block does not have are left out:
//   hook_resid_pre          the block's input
//   ln1.hook_normalized     pre-LN only: the attention's input
//   attn.hook_q ... attn.hook_z   a MultiHeadAttention's own (attention.hpp)
//   hook_attn_out           the attention's output, before residual dropout
//   hook_resid_mid          with an ffn: the stream between the sublayers (post-LN: ln1's
//                           output)
//   ln2.hook_normalized     pre-LN with an ffn: the ffn's input
//   hook_mlp_out            with an ffn: its output, before residual dropout
//   hook_resid_post         the block's output
//
//   BlockLayers parts{std::make_shared<LayerNorm>(64),
//                     std::make_shared<MultiHeadAttention>(attention_options, rng),
//                     std::make_shared<LayerNorm>(64),
//                     std::make_shared<FeedForward>(FeedForwardOptions{64, 256}, rng)};
//   TransformerBlock block(parts, TransformerBlockOptions{});
//   Tensor y = block.forward(x);   // (B, T, 64) -> (B, T, 64)
#pragma once

#include <memory>
#include <string>

#include "core/random.hpp"
#include "layers/hooks.hpp"
#include "layers/layer.hpp"

namespace qkv::layers {

enum class NormPlacement { pre, post };

// "pre" / "post", the YAML spelling of model.norm_placement.
const char* norm_placement_name(NormPlacement placement);

struct BlockLayers {
  std::shared_ptr<Layer> ln1;
  std::shared_ptr<AttentionLayer> attn;
  std::shared_ptr<Layer> ln2;  // null exactly when ffn is: an attention-only block
  std::shared_ptr<Layer> ffn;
};

struct TransformerBlockOptions {
  NormPlacement norm_placement = NormPlacement::pre;
  double dropout = 0.0;  // residual dropout, training mode only
};

class TransformerBlock : public Module {
 public:
  // dropout_rng must outlive the block; it is required when options.dropout > 0. Missing
  // layers (or ln2 without ffn) and a bad rate are std::invalid_argument.
  TransformerBlock(const BlockLayers& layers, const TransformerBlockOptions& options,
                   core::Rng* dropout_rng = nullptr);

  Tensor forward(const Tensor& x, const KeyPadding* key_padding = nullptr);

  AttentionLayer& attention() { return *layers_.attn; }
  const AttentionLayer& attention() const { return *layers_.attn; }
  Layer* ffn() const { return layers_.ffn.get(); }  // null for an attention-only block
  const TransformerBlockOptions& options() const { return options_; }

  // This block's hook points (see above), named relative to it.
  HookPoints hook_points();

 private:
  Tensor residual(const Tensor& branch);  // residual dropout of a sublayer's output

  BlockLayers layers_;
  TransformerBlockOptions options_;
  core::Rng* dropout_rng_;
  HookPoint hook_resid_pre_{"hook_resid_pre"}, hook_ln1_{"ln1.hook_normalized"};
  HookPoint hook_attn_out_{"hook_attn_out"}, hook_resid_mid_{"hook_resid_mid"};
  HookPoint hook_ln2_{"ln2.hook_normalized"}, hook_mlp_out_{"hook_mlp_out"};
  HookPoint hook_resid_post_{"hook_resid_post"};
};

}  // namespace qkv::layers
