// MultiHeadAttention: scaled dot-product attention over H heads, where each of the query,
// key and value projections is either learned or the identity, and the output projection
// can be switched off. This is the heart of qkv: it lets an experiment ask what the
// projections contribute ("attention without Wq/Wk/Wv").
//
// Shapes (C = d_model, H = heads, Dk = query/key width per head, Dv = value width per head):
//   all learned (the reference):  wq, wk, wv: C -> C (H heads of Dk = Dv = C/H), wo: C -> C
//   wq identity:   every head's queries are x itself (Dk = C); wk must then give C per head,
//                  so a learned wk is C -> H·C (and the other way round)
//   wq, wk identity: raw dot products x xᵀ, the same scores in every head (Dk = C)
//   wv identity:   every head's values are x (Dv = C): heads side by side are H·C wide,
//                  and a learned wo maps H·C -> C
//   wo none:       the heads side by side are the output, so H·Dv must equal C
//   projections none (Q = K = V = x, no wo): raw dot products, every head identical; the
//                  output is that one head's (B, T, C). It is computed once, not H times.
// Every learned projection is a Linear with bias (`wq.weight`, `wq.bias`, ..., `wo.bias`);
// identity adds no parameters. Scores are scaled by 1/sqrt(Dk). Combinations that cannot
// work (C not divisible by H for a learned per-head projection, wo none with heads whose
// concatenation is not C wide) are rejected with a message naming the options.
//
// The scores, masked softmax and weighted sum are the fused core::attention op (one BLAS
// call per batch and head, no head copies); identity sides pass x itself, uncopied. Each
// learned projection is one gemm over all B·T positions (a single concatenated QKV gemm
// was measured slower here, see forward()).
//
// It is an AttentionLayer (layer.hpp), registered as the built-in layer type
// `multi_head_attention` (builtin_layers.hpp). Inspection does not touch the training path:
// capture_attention(true) makes each forward keep its probabilities (B, H, T, T), which the
// fused op hands back at no extra cost, and head_weights(h) returns detached copies of head
// h's slices of the projections. Attention dropout draws from `dropout_rng`, a generator
// the caller owns (the Transformer's); it is needed only when dropout > 0.
//
// Hook points (hooks.hpp; in a Transformer they are `blocks.<i>.attn.<name>`), each a view
// of the value the forward uses, heads on their own axis (h = H, or 1 for an identity side:
// the one tensor every head shares):
//   hook_q (B, T, h, Dk), hook_k (B, S, h, Dk), hook_v (B, S, h, Dv)
//   hook_pattern (B, H, T, S)  the probabilities; read-only, as they live inside the fused
//                              op (replacing them would need an unfused path)
//   hook_z (B, T, h, Dv)       each head's output before wo (h = 1 for projections none,
//                              whose one head is the output)
// With no hook set the forward makes no view and asks the op for no probabilities.
//
//   MultiHeadAttentionOptions o;
//   o.d_model = 64; o.heads = 4; o.wq = Projection::identity;
//   MultiHeadAttention attn(o, rng);
//   attn.capture_attention(true);
//   Tensor y = attn.forward(x);                 // (B, T, 64) -> (B, T, 64)
//   Tensor maps = attn.attention_map();         // (B, 4, T, T)
//   HeadWeights w = attn.head_weights(2);       // w.wq undefined (identity), w.wk [64, 64]
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/random.hpp"
#include "layers/hooks.hpp"
#include "layers/layer.hpp"
#include "layers/linear.hpp"

namespace qkv::layers {

enum class Projection { learned, identity };

const char* projection_name(Projection projection);  // "learned" / "identity"

struct MultiHeadAttentionOptions {
  std::size_t d_model = 0;
  std::size_t heads = 1;
  Projection wq = Projection::learned;
  Projection wk = Projection::learned;
  Projection wv = Projection::learned;
  bool wo = true;       // a learned output projection; false: the heads' concatenation
  bool causal = true;   // position i attends to positions <= i only
  double dropout = 0.0;  // on the attention probabilities, in training mode

  // `projections: none`: Q = K = V = x and no wo.
  static MultiHeadAttentionOptions no_projections(std::size_t d_model, std::size_t heads);
};

// The widths a set of options implies, or std::invalid_argument naming the options when
// they cannot work. The constructor uses it; a config reader can call it first.
struct AttentionShape {
  std::size_t qk_dim = 0;          // Dk, per head
  std::size_t v_dim = 0;           // Dv, per head
  bool one_head_for_all = false;   // projections none: one head computed, standing for all
};
AttentionShape attention_shape(const MultiHeadAttentionOptions& options);

// One head's slices of the projections, detached copies. Undefined for an identity side
// (or no wo). wq: (Dk, C), bq: (Dk); wk, bk likewise; wv: (Dv, C), bv: (Dv); wo: (C, Dv),
// the columns of wo that read this head (wo's bias is shared by all heads, so not here).
struct HeadWeights {
  Tensor wq, bq, wk, bk, wv, bv, wo;
};

class MultiHeadAttention : public AttentionLayer {
 public:
  // dropout_rng must outlive the layer; it is required when options.dropout > 0.
  MultiHeadAttention(const MultiHeadAttentionOptions& options, core::Rng& rng,
                     core::Rng* dropout_rng = nullptr);

  using AttentionLayer::forward;  // forward(x): no padding
  // (B, T, C) -> (B, T, C); key_padding: B·T bytes, nonzero = that key is never attended to.
  Tensor forward(const Tensor& x, const KeyPadding* key_padding) override;

  const MultiHeadAttentionOptions& options() const { return options_; }
  std::size_t heads() const { return options_.heads; }
  std::size_t qk_dim() const { return shape_.qk_dim; }  // Dk, per head
  std::size_t v_dim() const { return shape_.v_dim; }    // Dv, per head

  HeadWeights head_weights(std::size_t head) const;

  // hook_q, hook_k, hook_v, hook_pattern, hook_z, in forward order.
  HookPoints hook_points();

 private:
  // `t` (B, T, h·D) as (B, T, h, D) through `point`, and back.
  static Tensor through_heads(const HookPoint& point, const Tensor& t, std::size_t h);

  MultiHeadAttentionOptions options_;
  AttentionShape shape_;
  core::Rng* dropout_rng_;
  std::shared_ptr<Linear> wq_, wk_, wv_, wo_;  // null when identity / none
  HookPoint hook_q_{"hook_q"}, hook_k_{"hook_k"}, hook_v_{"hook_v"};
  HookPoint hook_pattern_{"hook_pattern", HookPoint::Access::read_only};
  HookPoint hook_z_{"hook_z"};
};

}  // namespace qkv::layers
