// What a model's attention heads compute, read from their weights alone (no input).
//
// For head h of a MultiHeadAttention with input x (the block's normed residual stream, one
// row per position, C = d_model wide), the two circuits of Elhage et al. (2021):
//
//   QK circuit  W_QK = Wq_hᵀ · Wk_h / sqrt(Dk)   (C × C)   score(x_i, x_j) = x_i W_QK x_jᵀ
//   OV circuit  W_OV = Wo_h · Wv_h               (C × C)   head output = Σ_j p_ij W_OV x_j
//
// (`qk: merged` learns the head's C × C matrix W_h itself: W_QK = W_h / sqrt(C/H); `qk:
// tied` has Wk = Wq; a frozen side is read like a learned one.) W_QK includes the scale
// the scores are multiplied by (MultiHeadAttention::score_scale()), so that the first line is exact
// (up to the bias terms, which are left out) and its singular values are the scores' own
// scale whatever the head width (TransformerLens's W_Q @ W_K.T leaves the scale out; the
// scale changes neither a cosine, nor the symmetry, nor the effective rank). W_OV acts on
// column vectors (W_OV x_j); TransformerLens's row-vector W_V @ W_O is its transpose, with
// the same statistics. An identity side is the identity: with `projections: none` (or
// wq = wk = identity) W_QK = I / sqrt(C), the raw dot product; without wo, Wo_h places
// the head's Dv columns where the heads' concatenation puts them.
//
// For each circuit: its Frobenius norm; its cosine similarity to the identity,
// trace(W) / (‖W‖ sqrt(C)) (1: a scaled raw dot product or a plain copy); its symmetry
// ‖(W + Wᵀ)/2‖ / ‖W‖ (1: symmetric, as x·y is; 0: antisymmetric); its effective rank,
// exp of the entropy of the normalized singular values σ_i / Σσ (Roy & Vetterli 2007: C
// for the identity, 1 for a rank-one matrix); and its largest singular values. Per layer,
// head-to-head similarity: the cosine of the flattened W_QK (and W_OV) of every pair of
// heads (every entry is 1 with `projections: none`: all heads are one head).
//
// Only the built-in MultiHeadAttention has weights to read; a layer of another type in the
// attention slot gets `analyzed = false` and a note (its attention maps are still
// inspected, see patterns.hpp).
//
//   WeightReport report = analyze_weights(model);
//   const HeadWeightStats& h = report.layers[0].heads[1];
//   std::printf("%.3f %.2f\n", h.qk.identity_cosine, h.qk.effective_rank);
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "inspect/matrix.hpp"
#include "layers/attention.hpp"
#include "layers/transformer.hpp"

namespace qkv::inspect {

// How many of the largest singular values a CircuitStats keeps.
constexpr std::size_t kTopSingularValues = 4;

struct CircuitStats {
  double norm = 0;             // Frobenius
  double identity_cosine = 0;  // trace(W) / (‖W‖ sqrt(C)); 0 for W = 0
  double symmetry = 0;         // ‖(W + Wᵀ)/2‖ / ‖W‖; 0 for W = 0
  double effective_rank = 0;   // exp(-Σ p_i log p_i), p_i = σ_i / Σσ; 0 for W = 0
  std::vector<double> top_singular_values;  // largest first
};

struct HeadWeightStats {
  // Frobenius norms of the head's slices (HeadWeights); empty for an identity side or no wo.
  std::optional<double> wq_norm, wk_norm, wv_norm, wo_norm;
  // qk merged: the norm of the head's one C × C matrix W_h (wq_norm, wk_norm are empty:
  // there is no Wq or Wk, which is not an identity side); empty otherwise.
  std::optional<double> wqk_norm;
  CircuitStats qk, ov;
};

struct LayerWeightStats {
  std::string attention_type;  // the model's attention section type ("multi_head_attention")
  bool analyzed = false;       // false: not a MultiHeadAttention, only its maps are inspected
  std::string note;            // why not analyzed
  std::vector<HeadWeightStats> heads;
  Matrix qk_similarity;  // H × H: cosine of flattened W_QK of heads a and b
  Matrix ov_similarity;  // H × H: the same for W_OV
};

struct WeightReport {
  std::vector<LayerWeightStats> layers;
};

// Head h's circuits (see above). h must be < attention.heads() (std::out_of_range).
Matrix qk_circuit(const layers::MultiHeadAttention& attention, std::size_t head);
Matrix ov_circuit(const layers::MultiHeadAttention& attention, std::size_t head);

// The statistics of a square matrix (std::invalid_argument otherwise). The SVD is LAPACK's
// gesdd through xtensor-blas.
CircuitStats circuit_stats(const Matrix& w);

// <a, b> / (‖a‖ ‖b‖) over all elements; 1 when both are zero, 0 when only one is. The
// shapes must match (std::invalid_argument naming both).
double cosine_similarity(const Matrix& a, const Matrix& b);

// Mean of the off-diagonal entries of a square similarity table; empty for fewer than two
// rows (one head has nothing to be similar to).
std::optional<double> mean_off_diagonal(const Matrix& similarity);

WeightReport analyze_weights(const layers::Transformer& model);

}  // namespace qkv::inspect
