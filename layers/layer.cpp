// AttentionLayer: keeping the probabilities an attention layer hands over while capturing.
#include "layers/layer.hpp"

#include <stdexcept>

namespace qkv::layers {

void AttentionLayer::keep_attention_map(const Tensor& probabilities) {
  if (!probabilities.defined() || probabilities.dim() != 4) {
    throw std::invalid_argument(
        "AttentionLayer::keep_attention_map: expected probabilities (B, H, T, S), got " +
        (probabilities.defined() ? core::shape_str(probabilities.shape()) : std::string("undefined")));
  }
  attention_map_ = probabilities.detach();
}

}  // namespace qkv::layers
