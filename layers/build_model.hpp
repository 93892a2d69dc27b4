// The `model:` section of a config: its schema, the one reader and writer of it, and the
// one place a Transformer is built from it.
//
// Schema (every key read through ConfigNode; defaults in brackets):
//
//   model:
//     d_model: 64            # required: the residual stream width C, at most 16384
//     heads: 4               # required, at most 1024
//     layers: 2              # required, 1 to 1024
//     d_ff: 256              # [4 * d_model] the built-in feed_forward's hidden width, at
//                            #   most 65536 (so is its `hidden`)
//     activation: gelu       # [gelu] gelu (exact, erf) | relu, for the built-in feed_forward
//     dropout: 0.0           # [0] embedding and residual dropout, in [0, 1); the built-in
//                            #   attention's default
//     norm_placement: pre    # [pre] pre | post: where each block's norms sit
//     positional: {type: learned_positions}   # [learned_positions] | sinusoidal_positions
//     norm: {type: layer_norm, eps: 1e-5}     # [layer_norm] the layer of ln1, ln2 and ln_f
//     attention:                              # [multi_head_attention]
//       type: multi_head_attention
//       projections: learned # [learned] learned | none (none: Q = K = V = x, no wo; then
//                            #   wq/wk/wv/wo/qk must not be given)
//       qk: separate         # [separate] separate | merged (one learned d_model x d_model
//                            #   matrix per head scores x W yᵀ; then wq, wk must not be
//                            #   given) | tied (wk = wq, symmetric scores; no wk)
//       wq: learned          # [learned] learned | identity | frozen (drawn as learned,
//                            #   never trained, saved in checkpoints); likewise wk, wv
//       wo: learned          # [learned] learned | frozen | none
//       causal: true         # [true]
//       dropout: 0.0         # [model dropout] on the attention probabilities
//     ffn: {type: feed_forward, hidden: 256, activation: gelu}
//                            # [feed_forward] hidden [d_ff], activation [activation];
//                            #   `ffn: none` makes attention-only blocks
//
// Each of the four slots names any registered layer type (registry.hpp; the built-ins and
// their keys are in builtin_layers.hpp), as a mapping with `type:` and that layer's own
// keys, or as a bare name (`positional: sinusoidal_positions`). The attention slot's layer
// must be an AttentionLayer. Old spellings are errors that say what replaced them:
// `norm: pre|post` (the placement is model.norm_placement now) and `positional:
// learned|sinusoidal` (now learned_positions | sinusoidal_positions).
//
// When each key is checked:
// - read_transformer_options checks everything it can without building: required keys,
//   types, ranges and choices of the typed keys, each slot's form and the old spellings,
//   and it calls finish() on the section, so a misspelled key of the section itself is an
//   error naming its path and the closest key.
// - A slot's own keys are known only to its layer's factory, which reads them when
//   build_model builds the model (finish() leaves typed sections to their reader); then
//   build_model calls finish() on each slot, so a misspelled slot key is an error too.
//
// Writing: write_transformer_options writes every typed key and each slot with
// ConfigWriter::set_section, which writes the keys the slot was given and the defaults its
// factory fell back on. Those defaults are recorded only when the factory reads the slot,
// so write the options after build_model has built the model from them; the written
// section then reads back to the same options and builds the same model.
//
//   ConfigNode root = load_config_tree("configs/copy.yaml");
//   TransformerOptions options = read_transformer_options(root.child("model"));
//   core::Rng rng(seed);
//   std::shared_ptr<Transformer> model = build_model(options, vocab, max_len, rng);
//   ConfigWriter out;
//   write_transformer_options(options, out.child("model"));   // the resolved section
#pragma once

#include <cstddef>
#include <memory>

#include "core/random.hpp"
#include "layers/registry.hpp"
#include "layers/transformer.hpp"
#include "strict_yaml/config_node.hpp"
#include "strict_yaml/config_writer.hpp"

namespace qkv::layers {

// The upper bounds of the section's sizes: far above what trains on a CPU, low enough that
// a typo of a few zeros is an error at its key rather than an allocation that never ends
// (`layers: 1000000` hung). Whether a run fits in memory is the trainer's check.
constexpr std::size_t kMaxModelWidth = 16384;   // d_model
constexpr std::size_t kMaxHeads = 1024;
constexpr std::size_t kMaxLayers = 1024;
constexpr std::size_t kMaxHiddenWidth = 65536;  // d_ff, and feed_forward's hidden

// The section's options, or a ConfigError naming the key, what was expected and what was
// found (including keys nobody reads; the slots' own keys are build_model's to check).
TransformerOptions read_transformer_options(const qkv::ConfigNode& model);

// Writes the section's keys into `out` (the `model` mapping), in the schema's order.
void write_transformer_options(const TransformerOptions& options, qkv::ConfigWriter& out);

// Builds the model once, drawing initial weights from `rng`, with the layer types of
// `registry` (the process-wide one by default), then finishes each slot's section.
std::shared_ptr<Transformer> build_model(const TransformerOptions& options, std::size_t vocab,
                                         std::size_t max_len, core::Rng& rng,
                                         const LayerRegistry& registry = layer_registry());

}  // namespace qkv::layers
