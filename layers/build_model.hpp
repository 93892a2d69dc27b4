// build_model: the Transformer described by a config's `model:` section.
//
// Schema (every key read through ConfigNode: an unknown or misspelled key is an error that
// names its path and the closest valid key; defaults in brackets):
//
//   model:
//     d_model: 64            # required: the residual stream width C
//     heads: 4               # required
//     layers: 2              # required, >= 1
//     d_ff: 256              # [4 * d_model] hidden width of the built-in feed_forward
//     activation: gelu       # [gelu] gelu (exact, erf) | relu, for the built-in feed_forward
//     dropout: 0.0           # [0] embedding and residual dropout, in [0, 1)
//     positional: learned    # [learned] learned | sinusoidal
//     norm: pre              # [pre] pre | post (LayerNorm placement in each block)
//     attention:
//       projections: learned # [learned] learned | none (none: Q = K = V = x, no wo; then
//                            #   wq/wk/wv/wo must not be given)
//       wq: learned          # [learned] learned | identity; likewise wk, wv
//       wo: learned          # [learned] learned | none
//       causal: true         # [true]
//       dropout: 0.0         # [model dropout] on the attention probabilities
//     ffn: {type: feed_forward}  # [type feed_forward] any registered layer type, with its own
//                                # keys (feed_forward: hidden [d_ff], activation
//                                # [activation]); `ffn: none` makes attention-only blocks
//
// Wrong values are ConfigErrors with the file position; an impossible attention
// combination (e.g. `wo: none` with `wv: identity` and several heads) names the options.
//
//   ConfigNode model_node = root.child("model");
//   core::Rng rng(seed);
//   std::shared_ptr<Transformer> model = build_model(model_node, vocab, max_len, rng);
//   Tensor logits = model->forward(ids);
#pragma once

#include <cstddef>
#include <memory>

#include "core/random.hpp"
#include "strict_yaml/config_node.hpp"
#include "layers/registry.hpp"
#include "layers/transformer.hpp"

namespace qkv::layers {

// Reads the section (and calls finish() on it) and builds the model, drawing initial
// weights from `rng`. Layer types come from `registry` (the process-wide one by default).
std::shared_ptr<Transformer> build_model(const ConfigNode& model, std::size_t vocab,
                                         std::size_t max_len, core::Rng& rng,
                                         const LayerRegistry& registry = layer_registry());

}  // namespace qkv::layers
