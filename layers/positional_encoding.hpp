// Positional encodings: add a vector per position to token embeddings (B, T, C).
//
// Both kinds are Layers: forward(x) returns x + P[0..T), with P broadcast over the batch.
// - LearnedPositionalEmbedding: parameter `weight` (max_len, C), N(0, 1) like an
//   nn.Embedding (the reference model's `pos` table). Rows past T get no gradient.
// - SinusoidalPositionalEncoding: the fixed table of "Attention Is All You Need",
//   P[p, 2i] = sin(p / 10000^(2i/C)), P[p, 2i+1] = cos(p / 10000^(2i/C)); no parameters.
// A sequence longer than max_len is an error naming both lengths. Registered as the
// built-in layer types `learned_positions` and `sinusoidal_positions` (builtin_layers.hpp).
//
//   LearnedPositionalEmbedding pos(max_len, 64, rng);
//   Tensor h = pos.forward(tok.forward(ids));   // (B, T, 64)
#pragma once

#include <cstddef>

#include "core/random.hpp"
#include "layers/layer.hpp"

namespace qkv::layers {

class LearnedPositionalEmbedding : public Layer {
 public:
  LearnedPositionalEmbedding(std::size_t max_len, std::size_t dim, core::Rng& rng);

  Tensor forward(const Tensor& x) override;  // (B, T, C), T <= max_len

  std::size_t max_len() const { return max_len_; }
  const Tensor& weight() const { return weight_; }

 private:
  std::size_t max_len_;
  std::size_t dim_;
  Tensor weight_;
};

class SinusoidalPositionalEncoding : public Layer {
 public:
  SinusoidalPositionalEncoding(std::size_t max_len, std::size_t dim);

  Tensor forward(const Tensor& x) override;  // (B, T, C), T <= max_len

  std::size_t max_len() const { return max_len_; }
  // The table (max_len, C) in the dtype last used (float64 before any forward).
  const Tensor& table() const { return table_; }

 private:
  std::size_t max_len_;
  std::size_t dim_;
  Tensor table_;  // not a parameter; converted once to the activations' dtype
};

}  // namespace qkv::layers
