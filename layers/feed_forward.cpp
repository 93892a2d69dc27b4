// FeedForward: Linear -> GELU/ReLU -> Linear.
#include "layers/feed_forward.hpp"

#include <stdexcept>

#include "core/ops.hpp"

namespace qkv::layers {

const char* activation_name(Activation activation) {
  return activation == Activation::gelu ? "gelu" : "relu";
}

Activation parse_activation(const std::string& name) {
  if (name == "gelu") return Activation::gelu;
  if (name == "relu") return Activation::relu;
  throw std::invalid_argument("unknown activation '" + name + "' (expected gelu or relu)");
}

FeedForward::FeedForward(const FeedForwardOptions& options, core::Rng& rng) : options_(options) {
  if (options.dim == 0 || options.hidden == 0) {
    throw std::invalid_argument("FeedForward: dim and hidden must be positive; got dim " +
                                std::to_string(options.dim) + ", hidden " +
                                std::to_string(options.hidden));
  }
  fc1_ = register_module("fc1", std::make_shared<Linear>(options.dim, options.hidden, rng));
  fc2_ = register_module("fc2", std::make_shared<Linear>(options.hidden, options.dim, rng));
}

Tensor FeedForward::forward(const Tensor& x) {
  // (B, T, C) -> (B, T, hidden); GELU's fused op is fc1 and the activation in one pass.
  const Tensor h = options_.activation == Activation::gelu
                       ? core::linear_gelu(x, fc1_->weight(), fc1_->bias())
                       : core::relu(fc1_->forward(x));
  return fc2_->forward(h);  // (B, T, hidden) -> (B, T, C)
}

}  // namespace qkv::layers
