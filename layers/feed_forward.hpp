// FeedForward: the position-wise MLP of a transformer block, fc2(act(fc1(x))).
//
// fc1: C -> hidden, act: GELU (exact, erf; the default) or ReLU, fc2: hidden -> C, both
// Linear with bias (parameters `fc1.weight`, `fc1.bias`, `fc2.weight`, `fc2.bias`). No
// dropout inside: the block applies residual dropout to the whole sublayer's output.
// With GELU, fc1 and the activation run as one op (core::linear_gelu, the same bits).
// Registered as the built-in layer type `feed_forward` (see builtin_layers.hpp).
//
//   FeedForward ffn(FeedForwardOptions{64, 256, Activation::gelu}, rng);
//   Tensor y = ffn.forward(x);   // (B, T, 64) -> (B, T, 64)
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "core/random.hpp"
#include "layers/layer.hpp"
#include "layers/linear.hpp"

namespace qkv::layers {

enum class Activation { gelu, relu };

// "gelu" / "relu", and back (throws std::invalid_argument naming the choices).
const char* activation_name(Activation activation);
Activation parse_activation(const std::string& name);

struct FeedForwardOptions {
  std::size_t dim = 0;     // C, in and out
  std::size_t hidden = 0;  // usually 4 C
  Activation activation = Activation::gelu;
};

class FeedForward : public Layer {
 public:
  FeedForward(const FeedForwardOptions& options, core::Rng& rng);

  Tensor forward(const Tensor& x) override;

  const FeedForwardOptions& options() const { return options_; }

 private:
  FeedForwardOptions options_;
  std::shared_ptr<Linear> fc1_;
  std::shared_ptr<Linear> fc2_;
};

}  // namespace qkv::layers
