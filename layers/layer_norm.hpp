// LayerNorm over the last axis, PyTorch's nn.LayerNorm(dim, eps=1e-5).
//
// Parameters: `weight` (dim) initialized to ones and `bias` (dim) to zeros. The fused
// kernel (mean, variance, normalize, scale, shift in one pass) is core::layer_norm.
// Registered as the built-in layer type `layer_norm` (see builtin_layers.hpp).
//
//   LayerNorm ln(64);
//   Tensor y = ln.forward(x);   // (B, T, 64) -> (B, T, 64)
#pragma once

#include <cstddef>

#include "layers/layer.hpp"

namespace qkv::layers {

class LayerNorm : public Layer {
 public:
  explicit LayerNorm(std::size_t dim, double eps = 1e-5);

  Tensor forward(const Tensor& x) override;

  std::size_t dim() const { return dim_; }
  double eps() const { return eps_; }

 private:
  std::size_t dim_;
  double eps_;
  Tensor weight_;
  Tensor bias_;
};

}  // namespace qkv::layers
