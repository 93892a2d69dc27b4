// Transformer: the whole model, token ids (B, T) -> logits (B, T, V).
//
//   h = positional(tok_emb(ids))            adds a vector per position (learned table,
//                                           sinusoids, or a user's layer)
//   h = drop(h)                             embedding dropout, training mode only
//   h = blocks.i(h)  for i in 0..layers     see transformer_block.hpp
//   logits = head(ln_f(h))                  untied Linear C -> V with bias
// This is the reference architecture of docs/DESIGN.md and bench/torch_ref.py (with the
// default options). Parameter names, which checkpoints use:
//   tok_emb.weight [V, C]            pos_emb.weight [max_len, C] (learned positions only)
//   blocks.<i>.ln1.weight / .bias    blocks.<i>.attn.{wq,wk,wv,wo}.weight / .bias
//   blocks.<i>.ln2.weight / .bias    blocks.<i>.ffn.fc1.weight / .bias, ffn.fc2...
//   ln_f.weight / .bias              head.weight [V, C], head.bias [V]
// (identity projections, `wo: none`, attention-only blocks and user layers in a slot
// change that list accordingly: `qk: merged` has blocks.<i>.attn.wqk [H, C, C] instead of
// wq and wk, `qk: tied` no wk; a frozen matrix keeps its names as a buffer, in state() and
// checkpoints but not in named_parameters()). ln_f is there in post-LN models too, so names do not
// depend on the norm placement.
//
// Every slot (positional, norm, attention, ffn) is built through a LayerRegistry from its
// config section, in this order of random draws: tok_emb, positional, then per block ln1,
// attn, ln2, ffn, then ln_f and head; the one norm section builds ln1, ln2 and ln_f. The
// model owns the generator used by dropout (split from the initialization generator), so
// a trainer can save and restore it with a checkpoint: dropout_rng(); layers reach it
// through LayerContext::dropout_rng.
//
// Options normally come from a config (read_transformer_options, build_model.hpp); vocab
// and max_len come from the task.
//
//   TransformerOptions o = read_transformer_options(root.child("model"));
//   std::shared_ptr<Transformer> model = build_model(o, vocab, max_len, rng);
//   Tensor logits = model->forward(ids);   // (B, T) -> (B, T, V)
//   model->capture_attention(true);        // then attention_maps() after a forward
//
// Hook points (hooks.hpp), named as TransformerLens names them, in forward order; B, T, C,
// H, V as above, S = T keys, Dk / Dv the attention's widths per head:
//   hook_embed                     (B, T, C)  the token embeddings
//   hook_pos_embed                 (B, T, C)  read-only: what the positional layer adds,
//                                  computed as its output minus hook_embed (for a table,
//                                  its rows to float round-off); only when read
//   blocks.<i>.hook_resid_pre      (B, T, C)  after embedding dropout, for block 0
//   blocks.<i>.ln1.hook_normalized (B, T, C)  pre-LN only
//   blocks.<i>.attn.hook_q         (B, T, h, Dk)  h = H, or 1 for an identity wq (shared)
//   blocks.<i>.attn.hook_k         (B, S, h, Dk)
//   blocks.<i>.attn.hook_v         (B, S, h, Dv)
//   blocks.<i>.attn.hook_pattern   (B, H, T, S)  read-only (inside the fused op)
//   blocks.<i>.attn.hook_z         (B, T, h, Dv)  each head's output before wo
//   blocks.<i>.hook_attn_out       (B, T, C)
//   blocks.<i>.hook_resid_mid      (B, T, C)  blocks with an ffn
//   blocks.<i>.ln2.hook_normalized (B, T, C)  pre-LN blocks with an ffn
//   blocks.<i>.hook_mlp_out        (B, T, C)  blocks with an ffn
//   blocks.<i>.hook_resid_post     (B, T, C)
//   ln_final.hook_normalized       (B, T, C)  ln_f's output
//   logits                         (B, T, V)
// The attn.* points are MultiHeadAttention's (attention.hpp): a user's attention layer has
// the block's points around it but none inside. hook_names() lists a model's points.
//
//   model->add_hook(replace_hook("blocks.0.attn.hook_z", zero_head_2));
//   model->add_hook(read_hook("logits", [&](const Tensor& t) { seen = t; }));
#pragma once

#include <cstddef>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/ops.hpp"
#include "core/random.hpp"
#include "layers/embedding.hpp"
#include "layers/feed_forward.hpp"
#include "layers/hooks.hpp"
#include "layers/linear.hpp"
#include "layers/module.hpp"
#include "layers/registry.hpp"
#include "layers/transformer_block.hpp"

namespace qkv::layers {

// What a config's `model:` section says (build_model.hpp has the schema). The slots are
// config sections: a layer type and the ConfigNode its factory reads its keys from.
struct TransformerOptions {
  std::size_t d_model = 0;  // C, the residual stream width
  std::size_t heads = 0;
  std::size_t layers = 0;
  std::size_t d_ff = 0;     // LayerContext::d_ff (the built-in feed_forward's hidden width)
  Activation activation = Activation::gelu;  // LayerContext::activation
  double dropout = 0.0;     // embedding and residual dropout; LayerContext::dropout
  NormPlacement norm_placement = NormPlacement::pre;
  TypedSection positional{"learned_positions", ConfigNode()};
  TypedSection norm{"layer_norm", ConfigNode()};  // ln1, ln2 and ln_f
  TypedSection attention{"multi_head_attention", ConfigNode()};  // must build an AttentionLayer
  TypedSection ffn{"feed_forward", ConfigNode()};  // type "none": attention-only blocks
};

class Transformer : public Module {
 public:
  // Builds every layer, drawing initial weights from `rng` (see above). Non-positive sizes
  // or a bad dropout rate are std::invalid_argument; a slot's unknown type or bad keys are
  // ConfigErrors naming its section. `registry` is only used while constructing.
  Transformer(const TransformerOptions& options, std::size_t vocab, std::size_t max_len,
              core::Rng& rng, const LayerRegistry& registry = layer_registry());

  // tokens (B, T) with T <= max_len; key_padding: B·T bytes, nonzero = padding key, or
  // null. Returns logits (B, T, V).
  Tensor forward(const core::Ids& tokens, const KeyPadding* key_padding = nullptr);

  const TransformerOptions& options() const { return options_; }
  std::size_t vocab() const { return vocab_; }
  std::size_t max_len() const { return max_len_; }
  std::size_t d_model() const { return options_.d_model; }
  std::size_t layers() const { return blocks_.size(); }
  TransformerBlock& block(std::size_t i);
  const TransformerBlock& block(std::size_t i) const;

  // Learned scalars of every block's attention layer (frozen buffers are not counted): what
  // an ablation of the attention variants compares, beside parameter_count().
  std::size_t attention_parameter_count() const;

  // Inspection: while on, each block's attention layer (built-in or not) keeps its last
  // probabilities, and attention_maps() returns them per layer, each (B, H, T, T).
  void capture_attention(bool on);
  std::vector<Tensor> attention_maps() const;

  core::Rng& dropout_rng() { return dropout_rng_; }

  // Hooks (see above). An unknown name is std::invalid_argument naming the closest one.
  const std::vector<std::string>& hook_names() const { return hook_names_; }
  HookPoint& hook_point(const std::string& name);
  HookHandle add_hook(const Hook& hook);
  void remove_hook(const HookHandle& handle);
  void clear_hooks();  // every point's

 private:
  LayerContext layer_context();
  std::shared_ptr<TransformerBlock> make_block(const LayerRegistry& registry,
                                               const LayerContext& context, core::Rng& rng);
  void name_hook_points();  // once, in the constructor

  TransformerOptions options_;
  std::size_t vocab_;
  std::size_t max_len_;
  core::Rng dropout_rng_;
  std::shared_ptr<Embedding> tok_emb_;
  std::shared_ptr<Layer> pos_emb_;
  std::vector<std::shared_ptr<TransformerBlock>> blocks_;
  std::shared_ptr<Layer> ln_f_;
  std::shared_ptr<Linear> head_;
  HookPoint hook_embed_{"hook_embed"};
  HookPoint hook_pos_embed_{"hook_pos_embed", HookPoint::Access::read_only};
  HookPoint hook_ln_final_{"ln_final.hook_normalized"}, hook_logits_{"logits"};
  std::vector<std::string> hook_names_;
  std::map<std::string, HookPoint*> hook_points_;
};

}  // namespace qkv::layers
