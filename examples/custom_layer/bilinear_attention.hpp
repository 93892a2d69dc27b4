// BilinearAttention: a user-defined attention layer whose scores are a learned bilinear
// form of the token vectors themselves, one full C×C matrix per head:
//
//   scores_h = x W_h xᵀ / sqrt(C)                 W_h: C×C, learned, one per head
//   head_h   = softmax(scores_h + masks) x        the values are x itself (no Wv)
//   y        = wo(head_1 … head_H side by side)   wo: H·C -> C
//
// The built-in attention's scores are x Wq_h Wk_hᵀ xᵀ: the same bilinear form, factored
// through the head width Dk (so of rank <= Dk). This layer learns the form whole, with no
// factorization, and is an AttentionLayer, so it can stand in a model's attention slot
// (masks: causal, and key padding; capture_attention keeps the probabilities).
// bilinear_attention.cpp registers it under the type name `bilinear_attention`:
//
//   model:
//     attention: {type: bilinear_attention, heads: 2}   # heads [model.heads],
//                                                       # causal [true], dropout [model.dropout]
//
// Parameters: w [C, H·C] (columns h·C … h·C + C - 1 are W_h, so that x w is every head's
// x W_h in one gemm), wo.weight [C, H·C], wo.bias [C]; w is drawn like a Linear weight of
// fan-in C.
#pragma once

#include <cstddef>
#include <memory>

#include "core/random.hpp"
#include "layers/layer.hpp"
#include "layers/linear.hpp"
#include "layers/registry.hpp"

namespace example {

struct BilinearAttentionOptions {
  std::size_t d_model = 0;  // C
  std::size_t heads = 1;    // H
  bool causal = true;       // position i attends to positions <= i only
  double dropout = 0.0;     // on the probabilities, in training mode
};

class BilinearAttention : public qkv::layers::AttentionLayer {
 public:
  // dropout_rng draws the dropout masks (must outlive the layer; required when dropout > 0).
  BilinearAttention(const BilinearAttentionOptions& options, qkv::core::Rng& rng,
                    qkv::core::Rng* dropout_rng = nullptr);

  using AttentionLayer::forward;
  // (B, T, C) -> (B, T, C)
  qkv::core::Tensor forward(const qkv::core::Tensor& x,
                            const qkv::layers::KeyPadding* key_padding) override;

 private:
  BilinearAttentionOptions options_;
  qkv::core::Rng* dropout_rng_;
  qkv::core::Tensor w_;
  std::shared_ptr<qkv::layers::Linear> wo_;
};

// The registry's factory: reads `heads`, `causal` and `dropout` from the layer's section.
std::shared_ptr<qkv::layers::Layer> make_bilinear_attention(
    const qkv::ConfigNode& options, const qkv::layers::LayerContext& context,
    qkv::core::Rng& rng);

}  // namespace example
