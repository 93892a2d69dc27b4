// LayerNorm: gain and shift parameters around core::layer_norm.
#include "layers/layer_norm.hpp"

#include <stdexcept>
#include <string>

#include "core/ops.hpp"

namespace qkv::layers {

LayerNorm::LayerNorm(std::size_t dim, double eps) : dim_(dim), eps_(eps) {
  if (dim == 0 || !(eps > 0.0)) {
    throw std::invalid_argument("LayerNorm: dim and eps must be positive; got dim " +
                                std::to_string(dim) + ", eps " + std::to_string(eps));
  }
  weight_ = register_parameter("weight", Tensor::ones({dim}), ParamKind::norm);
  bias_ = register_parameter("bias", Tensor::zeros({dim}), ParamKind::norm);
}

Tensor LayerNorm::forward(const Tensor& x) { return core::layer_norm(x, weight_, bias_, eps_); }

}  // namespace qkv::layers
