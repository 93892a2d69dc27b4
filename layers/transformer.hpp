// Transformer: the whole model, token ids (B, T) -> logits (B, T, V).
//
//   h = tok_emb(ids) + positions            learned table `pos_emb.weight` or sinusoids
//   h = drop(h)                             embedding dropout, training mode only
//   h = blocks.i(h)  for i in 0..layers     see transformer_block.hpp
//   logits = head(ln_f(h))                  untied Linear C -> V with bias
// This is the reference architecture of DESIGN.md and bench/torch_ref.py (with the
// default block options). Parameter names, which checkpoints use:
//   tok_emb.weight [V, C]            pos_emb.weight [max_len, C] (learned positions only)
//   blocks.<i>.ln1.weight / .bias    blocks.<i>.attn.{wq,wk,wv,wo}.weight / .bias
//   blocks.<i>.ln2.weight / .bias    blocks.<i>.ffn.fc1.weight / .bias, ffn.fc2...
//   ln_f.weight / .bias              head.weight [V, C], head.bias [V]
// (identity projections, `wo: none`, attention-only blocks and custom ffn layers change
// that list accordingly). ln_f is there in post-LN models too, so names do not depend on
// the norm placement.
//
// The model owns the generator used by dropout (split from the initialization generator),
// so a trainer can save and restore it with a checkpoint: dropout_rng().
//
//   TransformerOptions o;
//   o.vocab = 16; o.max_len = 32; o.layers = 2;
//   o.block.attention.d_model = 64; o.block.attention.heads = 4;
//   o.block.ffn = feed_forward_builder({64, 256, Activation::gelu});
//   Transformer model(o, rng);
//   Tensor logits = model.forward(ids);   // (B, T) -> (B, T, 16)
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "core/ops.hpp"
#include "core/random.hpp"
#include "layers/embedding.hpp"
#include "layers/layer_norm.hpp"
#include "layers/linear.hpp"
#include "layers/module.hpp"
#include "layers/transformer_block.hpp"

namespace qkv::layers {

enum class Positional { learned, sinusoidal };

struct TransformerOptions {
  std::size_t vocab = 0;
  std::size_t max_len = 0;  // longest sequence the positions cover
  std::size_t layers = 1;
  Positional positional = Positional::learned;
  double dropout = 0.0;     // on the embeddings; blocks carry their own rates
  // Every block's options. The model points their dropout generators (block and
  // attention) at its own, so those fields are ignored here.
  TransformerBlockOptions block;
};

class Transformer : public Module {
 public:
  Transformer(const TransformerOptions& options, core::Rng& rng);

  // tokens (B, T) with T <= max_len; key_padding: B·T bytes, nonzero = padding key, or
  // null. Returns logits (B, T, V).
  Tensor forward(const core::Ids& tokens, const std::vector<std::uint8_t>* key_padding = nullptr);

  const TransformerOptions& options() const { return options_; }
  std::size_t d_model() const { return options_.block.attention.d_model; }
  std::size_t layers() const { return blocks_.size(); }
  TransformerBlock& block(std::size_t i);
  const TransformerBlock& block(std::size_t i) const;

  // Inspection: while on, each block keeps its last attention probabilities, and
  // attention_maps() returns them per layer, each (B, H, T, T).
  void capture_attention(bool on);
  std::vector<Tensor> attention_maps() const;

  core::Rng& dropout_rng() { return dropout_rng_; }

 private:
  TransformerOptions options_;
  core::Rng dropout_rng_;
  std::shared_ptr<Embedding> tok_emb_;
  std::shared_ptr<Layer> pos_emb_;
  std::vector<std::shared_ptr<TransformerBlock>> blocks_;
  std::shared_ptr<LayerNorm> ln_f_;
  std::shared_ptr<Linear> head_;
};

}  // namespace qkv::layers
