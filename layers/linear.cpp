// Linear: parameters and forward; the product itself is core::linear (one gemm).
#include "layers/linear.hpp"

#include <cmath>
#include <stdexcept>
#include <string>

#include "core/ops.hpp"

namespace qkv::layers {

Linear::Linear(std::size_t in_features, std::size_t out_features, core::Rng& rng, bool bias)
    : in_features_(in_features), out_features_(out_features) {
  if (in_features == 0 || out_features == 0) {
    throw std::invalid_argument("Linear: in_features and out_features must be positive; got " +
                                std::to_string(in_features) + " and " +
                                std::to_string(out_features));
  }
  const double bound = 1.0 / std::sqrt(static_cast<double>(in_features));
  weight_ = register_parameter(
      "weight", Tensor::uniform({out_features, in_features}, -bound, bound, rng), ParamKind::weight);
  if (bias) {
    bias_ = register_parameter("bias", Tensor::uniform({out_features}, -bound, bound, rng),
                               ParamKind::bias);
  }
}

Tensor Linear::forward(const Tensor& x) { return core::linear(x, weight_, bias_); }

}  // namespace qkv::layers
