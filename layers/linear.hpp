// Linear: y = x Wᵀ + b, PyTorch's nn.Linear, over the last axis of x (..., in) -> (..., out).
//
// Parameters: `weight` (out, in) and, unless disabled, `bias` (out). Both are drawn from
// U(-1/sqrt(in), 1/sqrt(in)), PyTorch's default. The product is one BLAS gemm over all
// leading positions ((B·T) x in by in x out), see core::linear.
//
//   Linear proj(64, 192, rng);          // weight [192, 64], bias [192]
//   Tensor y = proj.forward(x);         // (B, T, 64) -> (B, T, 192)
#pragma once

#include <cstddef>

#include "core/random.hpp"
#include "layers/layer.hpp"

namespace qkv::layers {

class Linear : public Layer {
 public:
  Linear(std::size_t in_features, std::size_t out_features, core::Rng& rng, bool bias = true);

  Tensor forward(const Tensor& x) override;

  std::size_t in_features() const { return in_features_; }
  std::size_t out_features() const { return out_features_; }
  const Tensor& weight() const { return weight_; }
  const Tensor& bias() const { return bias_; }  // undefined when built without bias

 private:
  std::size_t in_features_;
  std::size_t out_features_;
  Tensor weight_;
  Tensor bias_;
};

}  // namespace qkv::layers
