// The built-in layer types, by the names a config gives them, and the keys each reads
// (defaults in brackets; LayerContext supplies the model-wide ones):
//
//   learned_positions      LearnedPositionalEmbedding(max_len, d_model); no keys
//   sinusoidal_positions   SinusoidalPositionalEncoding(max_len, d_model); no keys
//   layer_norm             LayerNorm(d_model); eps [1e-5], > 0
//   multi_head_attention   MultiHeadAttention(d_model, heads); projections [learned] learned |
//                          none, wq/wk/wv [learned] learned | identity | frozen, wo [learned]
//                          learned | frozen | none, qk [separate] separate | merged | tied,
//                          causal [true], dropout [the model's dropout] in [0, 1)
//   feed_forward           FeedForward(d_model); hidden [d_ff] > 0, activation [the model's]
//                          gelu | relu
//
// An impossible attention combination (wq..wo or qk together with `projections: none`, wq
// or wk with `qk: merged`, wk with `qk: tied`, or e.g. `wo: none` with `wv: identity` and
// several heads) is a ConfigError naming the options.
//
//   LayerRegistry registry;
//   register_builtin_layers(registry);     // what layer_registry() holds from the start
//   registry.add("gain", make_gain);       // plus a test's or a program's own
#pragma once

#include "layers/registry.hpp"

namespace qkv::layers {

void register_builtin_layers(LayerRegistry& registry);

}  // namespace qkv::layers
