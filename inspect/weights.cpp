// Head weights, QK and OV circuits and their statistics (see weights.hpp). The only file
// of inspect/ that includes xtensor-blas (for the SVD), so it never includes <cblas.h>.
#include "inspect/weights.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

#include <xtensor-blas/xlinalg.hpp>
#include <xtensor/xadapt.hpp>
#include <xtensor/xarray.hpp>

#include "core/tensor.hpp"

namespace qkv::inspect {

namespace {

using layers::MultiHeadAttention;

// A 2-D tensor's values as a Matrix; an undefined tensor (identity side) gives `fallback`.
Matrix to_matrix(const core::Tensor& t, const Matrix& fallback) {
  if (!t.defined()) return fallback;
  Matrix m(t.size(0), t.size(1));
  m.values = t.to_vector();
  return m;
}

// a (n × k) times b (k × m); a transposed first when trans_a.
Matrix multiply(const Matrix& a, const Matrix& b, bool trans_a = false) {
  const std::size_t n = trans_a ? a.cols : a.rows;
  const std::size_t k = trans_a ? a.rows : a.cols;
  Matrix out(n, b.cols);
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t p = 0; p < k; ++p) {
      const double left = trans_a ? a(p, i) : a(i, p);
      for (std::size_t j = 0; j < b.cols; ++j) out(i, j) += left * b(p, j);
    }
  return out;
}

double frobenius(const Matrix& m) {
  double sum = 0;
  for (double v : m.values) sum += v * v;
  return std::sqrt(sum);
}

std::optional<double> norm_of(const core::Tensor& t) {
  if (!t.defined()) return std::nullopt;
  return frobenius(to_matrix(t, Matrix()));
}

void check_head(const MultiHeadAttention& attention, std::size_t head, const char* who) {
  if (head >= attention.heads()) {
    throw std::out_of_range(std::string(who) + ": head " + std::to_string(head) +
                            " out of range (heads " + std::to_string(attention.heads()) + ")");
  }
}

// The singular values of a square matrix, largest first.
std::vector<double> singular_values(const Matrix& w) {
  xt::xarray<double> a = xt::adapt(w.values, std::vector<std::size_t>{w.rows, w.cols});
  const auto svd = xt::linalg::svd(a, /*full_matrices=*/false, /*compute_uv=*/false);
  const xt::xarray<double>& s = std::get<1>(svd);
  std::vector<double> values(s.begin(), s.end());
  std::sort(values.rbegin(), values.rend());
  return values;
}

Matrix similarity_table(const std::vector<Matrix>& circuits) {
  Matrix table(circuits.size(), circuits.size());
  for (std::size_t a = 0; a < circuits.size(); ++a)
    for (std::size_t b = 0; b < circuits.size(); ++b)
      table(a, b) = cosine_similarity(circuits[a], circuits[b]);
  return table;
}

LayerWeightStats analyze_layer(const layers::AttentionLayer& layer, const std::string& type) {
  LayerWeightStats stats;
  stats.attention_type = type;
  const auto* attention = dynamic_cast<const MultiHeadAttention*>(&layer);
  if (attention == nullptr) {
    stats.note = "attention type '" + type +
                 "' is not a MultiHeadAttention: no Wq/Wk/Wv/Wo to read, maps only";
    return stats;
  }
  stats.analyzed = true;
  std::vector<Matrix> qk, ov;
  for (std::size_t h = 0; h < attention->heads(); ++h) {
    const layers::HeadWeights w = attention->head_weights(h);
    HeadWeightStats head;
    head.wq_norm = norm_of(w.wq);
    head.wk_norm = norm_of(w.wk);
    head.wqk_norm = norm_of(w.wqk);
    head.wv_norm = norm_of(w.wv);
    head.wo_norm = norm_of(w.wo);
    qk.push_back(qk_circuit(*attention, h));
    ov.push_back(ov_circuit(*attention, h));
    head.qk = circuit_stats(qk.back());
    head.ov = circuit_stats(ov.back());
    stats.heads.push_back(std::move(head));
  }
  stats.qk_similarity = similarity_table(qk);
  stats.ov_similarity = similarity_table(ov);
  return stats;
}

}  // namespace

Matrix qk_circuit(const MultiHeadAttention& attention, std::size_t head) {
  check_head(attention, head, "qk_circuit");
  const std::size_t C = attention.options().d_model;
  const layers::HeadWeights w = attention.head_weights(head);
  const Matrix identity = Matrix::identity(C);  // an identity side: Dk = C
  // qk merged holds W_h itself; otherwise it is the product of the two sides (tied: wk = wq).
  Matrix circuit = w.wqk.defined()
                       ? to_matrix(w.wqk, Matrix())
                       : multiply(to_matrix(w.wq, identity), to_matrix(w.wk, identity), true);
  for (double& v : circuit.values) v *= attention.score_scale();
  return circuit;
}

Matrix ov_circuit(const MultiHeadAttention& attention, std::size_t head) {
  check_head(attention, head, "ov_circuit");
  const std::size_t C = attention.options().d_model;
  const std::size_t Dv = attention.v_dim();
  const layers::HeadWeights w = attention.head_weights(head);
  Matrix wo;
  if (w.wo.defined()) {
    wo = to_matrix(w.wo, Matrix());
  } else if (layers::attention_shape(attention.options()).one_head_for_all) {
    wo = Matrix::identity(C);  // projections none: the one head's output is the output
  } else {
    // No wo: the heads side by side are the output, head h in columns [h·Dv, (h+1)·Dv).
    wo = Matrix(C, Dv);
    for (std::size_t i = 0; i < Dv; ++i) wo(head * Dv + i, i) = 1.0;
  }
  return multiply(wo, to_matrix(w.wv, Matrix::identity(C)));
}

CircuitStats circuit_stats(const Matrix& w) {
  if (w.rows != w.cols || w.empty()) {
    throw std::invalid_argument("circuit_stats: expected a square matrix, got " +
                                std::to_string(w.rows) + " x " + std::to_string(w.cols));
  }
  CircuitStats stats;
  stats.norm = frobenius(w);
  if (stats.norm == 0) return stats;
  const std::size_t C = w.rows;
  double trace = 0;
  Matrix sym(C, C);
  for (std::size_t i = 0; i < C; ++i) {
    trace += w(i, i);
    for (std::size_t j = 0; j < C; ++j) sym(i, j) = 0.5 * (w(i, j) + w(j, i));
  }
  stats.identity_cosine = trace / (stats.norm * std::sqrt(static_cast<double>(C)));
  stats.symmetry = frobenius(sym) / stats.norm;

  const std::vector<double> sigma = singular_values(w);
  double total = 0;
  for (double s : sigma) total += s;
  double entropy = 0;
  for (double s : sigma) {
    const double p = s / total;
    if (p > 0) entropy -= p * std::log(p);
  }
  stats.effective_rank = std::exp(entropy);
  stats.top_singular_values.assign(
      sigma.begin(), sigma.begin() + static_cast<std::ptrdiff_t>(
                                         std::min(kTopSingularValues, sigma.size())));
  return stats;
}

double cosine_similarity(const Matrix& a, const Matrix& b) {
  if (a.rows != b.rows || a.cols != b.cols) {
    throw std::invalid_argument("cosine_similarity: shapes differ, " + std::to_string(a.rows) +
                                " x " + std::to_string(a.cols) + " and " +
                                std::to_string(b.rows) + " x " + std::to_string(b.cols));
  }
  double dot = 0, aa = 0, bb = 0;
  for (std::size_t i = 0; i < a.values.size(); ++i) {
    dot += a.values[i] * b.values[i];
    aa += a.values[i] * a.values[i];
    bb += b.values[i] * b.values[i];
  }
  if (aa == 0 && bb == 0) return 1.0;
  if (aa == 0 || bb == 0) return 0.0;
  return dot / (std::sqrt(aa) * std::sqrt(bb));
}

std::optional<double> mean_off_diagonal(const Matrix& similarity) {
  if (similarity.rows < 2) return std::nullopt;
  double sum = 0;
  for (std::size_t a = 0; a < similarity.rows; ++a)
    for (std::size_t b = 0; b < similarity.cols; ++b)
      if (a != b) sum += similarity(a, b);
  return sum / static_cast<double>(similarity.rows * (similarity.rows - 1));
}

WeightReport analyze_weights(const layers::Transformer& model) {
  WeightReport report;
  for (std::size_t i = 0; i < model.layers(); ++i)
    report.layers.push_back(
        analyze_layer(model.block(i).attention(), model.options().attention.type));
  return report;
}

}  // namespace qkv::inspect
