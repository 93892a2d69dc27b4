// Embedding: a parameter table and a lookup through core::embedding.
#include "layers/embedding.hpp"

#include <stdexcept>
#include <string>

namespace qkv::layers {

Embedding::Embedding(std::size_t count, std::size_t dim, core::Rng& rng)
    : count_(count), dim_(dim) {
  if (count == 0 || dim == 0) {
    throw std::invalid_argument("Embedding: count and dim must be positive; got " +
                                std::to_string(count) + " and " + std::to_string(dim));
  }
  weight_ = register_parameter("weight", Tensor::randn({count, dim}, rng), ParamKind::embedding);
}

Tensor Embedding::forward(const core::Ids& ids) { return core::embedding(weight_, ids); }

}  // namespace qkv::layers
