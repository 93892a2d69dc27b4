// MultiHeadAttention: scaled dot-product attention over H heads, where each of the query,
// key, value and output projections is learned, frozen or the identity, and the query-key
// pair can instead be one merged matrix or one tied matrix. This is the heart of qkv: it
// lets an experiment ask what the projections contribute ("attention without Wq/Wk/Wv"),
// whether they must be learned, and whether the factorisation Wqᵀ·Wk matters.
//
// Per matrix (wq, wk, wv, wo):
//   learned    a Linear with bias, trained (`wq.weight`, `wq.bias`, ...)
//   frozen     the same Linear, drawn exactly as a learned one, never trained: its weight
//              and bias are buffers (module.hpp), saved in checkpoints, seen by no optimizer
//   identity   no matrix: that side is x itself (for wo, `wo: none` in a config: the heads'
//              concatenation is the output)
// Shapes (C = d_model, H = heads, Dk = query/key width per head, Dv = value width per head):
//   all learned (the reference):  wq, wk, wv: C -> C (H heads of Dk = Dv = C/H), wo: C -> C
//   wq identity:   every head's queries are x itself (Dk = C); wk must then give C per head,
//                  so a projected wk is C -> H·C (and the other way round)
//   wq, wk identity: raw dot products x xᵀ, the same scores in every head (Dk = C)
//   wv identity:   every head's values are x (Dv = C): heads side by side are H·C wide,
//                  and a projected wo maps H·C -> C
//   wo none:       the heads side by side are the output, so H·Dv must equal C
//   projections none (Q = K = V = x, no wo): raw dot products, every head identical; the
//                  output is that one head's (B, T, C). It is computed once, not H times.
// A frozen matrix has the shape a learned one would have.
//
// The query-key pair (`qk`):
//   separate   wq and wk as above: scores (Wq x_i + bq)·(Wk x_j + bk) / sqrt(Dk)
//   merged     one learned C × C matrix W_h per head, parameter `wqk` (H, C, C), and no wq
//              or wk: scores x_i W_h x_jᵀ / sqrt(C/H), the bilinear form without its
//              factorisation (Bermeitinger et al. 2024). W_h starts as Wq_hᵀ·Wk_h of the
//              reference's initial wq and wk (drawn as the reference draws them, biases
//              dropped), so at step 0 the model computes the reference's scores without Q/K
//              biases. It has no bias: the reference's key-side term bqᵀ Wk x_j has no
//              counterpart. Needs wq and wk at their default and C divisible by H.
//   tied       Wk = Wq: one matrix (wq, learned or frozen; wk must equal it) makes queries
//              and keys, so each head's scores are symmetric before the causal mask. A wk is
//              drawn and dropped, so wv and wo start as the reference's.
// Scores are scaled by score_scale(): 1/sqrt(Dk), and 1/sqrt(C/H) for merged. Combinations
// that cannot work (C not divisible by H for a projected per-head side, wo none with heads
// whose concatenation is not C wide, tied with an identity wq) are rejected with a
// message naming the options.
//
// The scores, masked softmax and weighted sum are the fused core::attention op (one BLAS
// call per batch and head, no head copies); identity sides pass x itself, uncopied. When
// qk is separate and wq, wk and wv are all learned or frozen, q, k and v come from one
// (B·T)×C by C×3C gemm (core::linear_stacked over the three Linears' own parameters, read
// in place when they lie side by side in the optimizer's flat buffer) whose column blocks
// core::attention_packed reads in place (a hook on q, k or v gets copies of the blocks,
// so hooks that only read change no bit). Every other variant keeps one gemm per
// projection.
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
//                              merged: hook_q is x·W_h (h = H, Dk = C), hook_k is x (h = 1);
//                              tied: hook_k starts as hook_q's value before hook_q's hooks
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
//
//   o.wq = Projection::learned; o.qk = QkForm::merged;   // parameter wqk [4, 64, 64]
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/random.hpp"
#include "layers/hooks.hpp"
#include "layers/layer.hpp"
#include "layers/linear.hpp"

namespace qkv::core {
struct AttentionOptions;  // core/ops.hpp
}

namespace qkv::layers {

enum class Projection { learned, identity, frozen };

const char* projection_name(Projection projection);  // "learned" / "identity" / "frozen"

// How queries and keys make the scores (see above).
enum class QkForm { separate, merged, tied };

const char* qk_form_name(QkForm form);  // "separate" / "merged" / "tied"

struct MultiHeadAttentionOptions {
  std::size_t d_model = 0;
  std::size_t heads = 1;
  Projection wq = Projection::learned;
  Projection wk = Projection::learned;
  Projection wv = Projection::learned;
  Projection wo = Projection::learned;  // identity: no wo, the heads' concatenation
  QkForm qk = QkForm::separate;
  bool causal = true;   // position i attends to positions <= i only
  double dropout = 0.0;  // on the attention probabilities, in training mode

  // `projections: none`: Q = K = V = x and no wo.
  static MultiHeadAttentionOptions no_projections(std::size_t d_model, std::size_t heads);
};

// "d_model 64, heads 4, wq learned, wk frozen, wv learned, wo none, qk separate".
std::string describe(const MultiHeadAttentionOptions& options);

// The widths a set of options implies, or std::invalid_argument naming the options when
// they cannot work. The constructor uses it; a config reader can call it first.
struct AttentionShape {
  std::size_t qk_dim = 0;          // Dk, per head
  std::size_t v_dim = 0;           // Dv, per head
  double scale = 1.0;              // of the scores: 1/sqrt(Dk), merged 1/sqrt(C/H)
  bool one_head_for_all = false;   // projections none: one head computed, standing for all
};
AttentionShape attention_shape(const MultiHeadAttentionOptions& options);

// One head's slices of the projections, detached copies, frozen ones as learned ones.
// Undefined for an identity side (or no wo). wq: (Dk, C), bq: (Dk); wk, bk likewise (tied:
// copies of wq, bq); wv: (Dv, C), bv: (Dv); wo: (C, Dv), the columns of wo that read this
// head (wo's bias is shared by all heads, so not here). wqk: qk merged only, the head's
// W_h (C, C), scores x_i W_h x_jᵀ · scale; wq, bq, wk, bk are then undefined.
struct HeadWeights {
  Tensor wq, bq, wk, bk, wv, bv, wo, wqk;
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
  double score_scale() const { return shape_.scale; }

  HeadWeights head_weights(std::size_t head) const;

  // hook_q, hook_k, hook_v, hook_pattern, hook_z, in forward order.
  HookPoints hook_points();

 private:
  // `t` (B, T, h·D) as (B, T, h, D) through `point`, and back.
  static Tensor through_heads(const HookPoint& point, const Tensor& t, std::size_t h);
  // A projection of `kind` (learned or frozen), C -> out, drawn from rng.
  std::shared_ptr<Linear> make_projection(const std::string& name, Projection kind,
                                          std::size_t out, core::Rng& rng);
  // merged: W_h = Wq_hᵀ·Wk_h of a reference wq and wk drawn from rng, as (H, C, C).
  Tensor merged_init(core::Rng& rng) const;
  // The queries and keys (B, T, ·), before their hooks.
  std::pair<Tensor, Tensor> queries_and_keys(const Tensor& x);
  // Whether q, k and v are the blocks of one stacked product: qk separate, wq, wk and wv
  // each learned or frozen.
  bool stacks_qkv() const;
  // That product, (B, T, C) -> (B, T, 3C).
  Tensor stacked_qkv(const Tensor& x) const;
  // q, k and v (B, T, ·) as tensors of their own, before their hooks.
  std::array<Tensor, 3> projections(const Tensor& x);
  // The heads side by side (B, T, H·Dv) of x: the projections, their hooks and the fused
  // op; sets attention's *_shared options.
  Tensor heads_of(const Tensor& x, core::AttentionOptions& attention);

  MultiHeadAttentionOptions options_;
  AttentionShape shape_;
  core::Rng* dropout_rng_;
  std::shared_ptr<Linear> wq_, wk_, wv_, wo_;  // null when identity / none (wk_: tied, merged)
  Tensor wqk_;                                 // merged: (H, C, C); else undefined
  HookPoint hook_q_{"hook_q"}, hook_k_{"hook_k"}, hook_v_{"hook_v"};
  HookPoint hook_pattern_{"hook_pattern", HookPoint::Access::read_only};
  HookPoint hook_z_{"hook_z"};
};

}  // namespace qkv::layers
