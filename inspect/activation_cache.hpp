// The activation cache: the value at every hook point of one forward, by name, as
// TransformerLens's run_with_cache gives it; and run_with_hooks, a forward with hooks set
// for that one call (ablations, patching: interventions.hpp).
//
// Names and shapes (B sequences of T tokens, S = T keys, C = d_model, H heads, V vocab;
// Dk, Dv the query/key and value widths per head; the full list is in
// layers/transformer.hpp, and cache.names() has the ones a model has, in forward order):
//   hook_embed, hook_pos_embed                  (B, T, C)   token embeddings, what the
//                                                           positional layer added
//   blocks.<i>.hook_resid_pre                   (B, T, C)   the residual stream into block i
//   blocks.<i>.ln1.hook_normalized              (B, T, C)   pre-LN: the attention's input
//   blocks.<i>.attn.hook_q / hook_k / hook_v    (B, T, h, Dk|Dv)  per head; h = 1 for an
//                                                           identity side (shared by all heads)
//   blocks.<i>.attn.hook_pattern                (B, H, T, S)  softmax probabilities, rows sum
//                                                           to 1 (0 for a padded query's keys)
//   blocks.<i>.attn.hook_z                      (B, T, h, Dv)  each head's output before wo
//   blocks.<i>.hook_attn_out                    (B, T, C)
//   blocks.<i>.hook_resid_mid                   (B, T, C)   blocks with an ffn
//   blocks.<i>.ln2.hook_normalized              (B, T, C)   pre-LN blocks with an ffn
//   blocks.<i>.hook_mlp_out                     (B, T, C)   blocks with an ffn
//   blocks.<i>.hook_resid_post                  (B, T, C)   the residual stream out of block i
//   ln_final.hook_normalized                    (B, T, C)
//   logits                                      (B, T, V)   what model.forward returns
// attn.* are the built-in attention's; a user's attention layer has none (the block's
// points around it are there). Post-LN blocks have no ln*.hook_normalized: their norms'
// outputs are hook_resid_mid and hook_resid_post.
//
// Both run in evaluation mode (no dropout) and without a graph, and put the model's mode
// and hooks back as they were, also when a hook throws. `hooks` are set for the call and
// run before the cache's readers, so a patched run caches the patched values.
//
//   ActivationCache cache = run_with_cache(model, ids);
//   Tensor pattern = cache["blocks.0.attn.hook_pattern"];     // (B, H, T, T)
//   ActivationCache ablated = run_with_cache(model, ids, {zero_ablate_head(0, 1)});
//   Tensor logits = run_with_hooks(model, ids, {patch("blocks.1.hook_resid_pre", other)});
#pragma once

#include <map>
#include <string>
#include <vector>

#include "core/ops.hpp"
#include "core/tensor.hpp"
#include "layers/hooks.hpp"
#include "layers/transformer.hpp"

namespace qkv::inspect {

class ActivationCache {
 public:
  const std::vector<std::string>& names() const { return names_; }  // forward order
  bool contains(const std::string& name) const { return values_.count(name) != 0; }
  // The value at `name`; an unknown name is std::out_of_range naming the closest one.
  const core::Tensor& at(const std::string& name) const;
  const core::Tensor& operator[](const std::string& name) const { return at(name); }
  const core::Tensor& logits() const { return at("logits"); }

  // Keeps `value` (not a copy) as the value at `name`, replacing an earlier one.
  void set(const std::string& name, const core::Tensor& value);

 private:
  std::vector<std::string> names_;
  std::map<std::string, core::Tensor> values_;
};

// tokens (B, T); key_padding as Transformer::forward takes it (B·T bytes, or null).
ActivationCache run_with_cache(layers::Transformer& model, const core::Ids& tokens,
                               const std::vector<layers::Hook>& hooks = {},
                               const layers::KeyPadding* key_padding = nullptr);

// The logits (B, T, V) of a forward with `hooks` set.
core::Tensor run_with_hooks(layers::Transformer& model, const core::Ids& tokens,
                            const std::vector<layers::Hook>& hooks,
                            const layers::KeyPadding* key_padding = nullptr);

}  // namespace qkv::inspect
