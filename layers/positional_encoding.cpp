// Positional encodings: learned table and fixed sinusoids, both added to (B, T, C).
#include "layers/positional_encoding.hpp"

#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/ops.hpp"

namespace qkv::layers {

namespace {

// x must be (B, T, C) with C == dim and T <= max_len; returns T.
std::size_t check_positions(const char* layer, const Tensor& x, std::size_t max_len,
                            std::size_t dim) {
  if (x.dim() != 3 || x.size(2) != dim) {
    throw std::invalid_argument(std::string(layer) + ": expected input (B, T, " +
                                std::to_string(dim) + "), got " + core::shape_str(x.shape()));
  }
  const std::size_t length = x.size(1);
  if (length > max_len) {
    throw std::invalid_argument(std::string(layer) + ": sequence length " +
                                std::to_string(length) + " exceeds max_len " +
                                std::to_string(max_len));
  }
  return length;
}

}  // namespace

LearnedPositionalEmbedding::LearnedPositionalEmbedding(std::size_t max_len, std::size_t dim,
                                                       core::Rng& rng)
    : max_len_(max_len), dim_(dim) {
  if (max_len == 0 || dim == 0) {
    throw std::invalid_argument("LearnedPositionalEmbedding: max_len and dim must be positive");
  }
  weight_ = register_parameter("weight", Tensor::randn({max_len, dim}, rng), ParamKind::embedding);
}

Tensor LearnedPositionalEmbedding::forward(const Tensor& x) {
  const std::size_t length = check_positions("LearnedPositionalEmbedding", x, max_len_, dim_);
  // (T, C) broadcast over the batch: (B, T, C) + (T, C)
  return core::add(x, core::slice(weight_, 0, 0, length));
}

SinusoidalPositionalEncoding::SinusoidalPositionalEncoding(std::size_t max_len, std::size_t dim)
    : max_len_(max_len), dim_(dim) {
  if (max_len == 0 || dim == 0) {
    throw std::invalid_argument("SinusoidalPositionalEncoding: max_len and dim must be positive");
  }
  std::vector<double> values(max_len * dim);
  for (std::size_t p = 0; p < max_len; ++p) {
    for (std::size_t i = 0; i < dim; i += 2) {
      const double angle =
          static_cast<double>(p) / std::pow(10000.0, static_cast<double>(i) / dim);
      values[p * dim + i] = std::sin(angle);
      if (i + 1 < dim) values[p * dim + i + 1] = std::cos(angle);
    }
  }
  table_ = Tensor::from_vector(values, {max_len, dim});
}

Tensor SinusoidalPositionalEncoding::forward(const Tensor& x) {
  const std::size_t length = check_positions("SinusoidalPositionalEncoding", x, max_len_, dim_);
  if (table_.dtype() != x.dtype()) table_ = table_.to(x.dtype());
  return core::add(x, core::slice(table_, 0, 0, length));
}

}  // namespace qkv::layers
