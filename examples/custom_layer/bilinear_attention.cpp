// BilinearAttention: one gemm for every head's x W_h, the fused attention op with x as the
// shared keys and values, wo; plus the one line that registers it.
#include "bilinear_attention.hpp"

#include <cmath>
#include <stdexcept>
#include <string>

#include "core/ops.hpp"

namespace example {

using qkv::core::Tensor;

BilinearAttention::BilinearAttention(const BilinearAttentionOptions& options,
                                     qkv::core::Rng& rng, qkv::core::Rng* dropout_rng)
    : options_(options), dropout_rng_(dropout_rng) {
  const std::size_t C = options.d_model, H = options.heads;
  if (C == 0 || H == 0) {
    throw std::invalid_argument("BilinearAttention: d_model and heads must be positive, got " +
                                std::to_string(C) + " and " + std::to_string(H));
  }
  if (options.dropout > 0.0 && dropout_rng == nullptr) {
    throw std::invalid_argument("BilinearAttention: dropout " + std::to_string(options.dropout) +
                                " needs a dropout generator, got none");
  }
  const double bound = 1.0 / std::sqrt(static_cast<double>(C));
  w_ = register_parameter("w", Tensor::uniform({C, H * C}, -bound, bound, rng));
  wo_ = register_module("wo", std::make_shared<qkv::layers::Linear>(H * C, C, rng));
}

Tensor BilinearAttention::forward(const Tensor& x, const qkv::layers::KeyPadding* key_padding) {
  const std::size_t C = options_.d_model;
  if (x.dim() != 3 || x.size(2) != C) {
    throw std::invalid_argument("BilinearAttention: expected input (B, T, " + std::to_string(C) +
                                "), got " + qkv::core::shape_str(x.shape()));
  }
  const Tensor xw = qkv::core::matmul(x, w_);  // (B, T, C) x (C, H·C) -> (B, T, H·C)

  // Head h's queries are x W_h; every head's keys and values are x itself, shared.
  qkv::core::AttentionOptions attention;
  attention.heads = options_.heads;
  attention.scale = 1.0 / std::sqrt(static_cast<double>(C));
  attention.causal = options_.causal;
  attention.k_shared = true;
  attention.v_shared = true;
  attention.dropout = options_.dropout;
  attention.training = is_training();
  attention.rng = dropout_rng_;
  attention.key_padding = key_padding;
  Tensor probabilities;
  if (capturing()) attention.probabilities = &probabilities;

  const Tensor heads = qkv::core::attention(xw, x, x, attention);  // (B, T, H·C)
  if (capturing()) keep_attention_map(probabilities);              // (B, H, T, T)
  return wo_->forward(heads);                                      // (B, T, C)
}

std::shared_ptr<qkv::layers::Layer> make_bilinear_attention(
    const qkv::ConfigNode& options, const qkv::layers::LayerContext& context,
    qkv::core::Rng& rng) {
  BilinearAttentionOptions o;
  o.d_model = context.d_model;
  o.heads = options.get<std::size_t>("heads", context.heads);
  options.require(o.heads > 0, "heads", "a positive number of heads");
  o.causal = options.get<bool>("causal", true);
  o.dropout = options.get<double>("dropout", context.dropout);
  options.require(o.dropout >= 0.0 && o.dropout < 1.0, "dropout", "a probability in [0, 1)");
  return std::make_shared<BilinearAttention>(o, rng, context.dropout_rng);
}

// The registration: one line, linked as an object (see CMakeLists.txt).
static const qkv::layers::RegisterLayer registration("bilinear_attention", make_bilinear_attention);

}  // namespace example
