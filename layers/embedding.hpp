// Embedding: a table of `count` vectors of width `dim`, looked up by integer ids.
//
// Parameter: `weight` (count, dim), initialized N(0, 1) like PyTorch's nn.Embedding (and
// the reference model in bench/torch_ref.py). Ids outside [0, count) are an error (from
// core::embedding). Backward scatter-adds into the rows that were used.
//
//   Embedding tok(vocab, 64, rng);
//   Tensor x = tok.forward(ids);        // ids (B, T) -> (B, T, 64)
#pragma once

#include <cstddef>

#include "core/ops.hpp"
#include "core/random.hpp"
#include "layers/module.hpp"

namespace qkv::layers {

class Embedding : public Module {
 public:
  Embedding(std::size_t count, std::size_t dim, core::Rng& rng);

  Tensor forward(const core::Ids& ids);

  std::size_t count() const { return count_; }
  std::size_t dim() const { return dim_; }
  const Tensor& weight() const { return weight_; }

 private:
  std::size_t count_;
  std::size_t dim_;
  Tensor weight_;
};

}  // namespace qkv::layers
