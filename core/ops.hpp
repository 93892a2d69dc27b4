// The differentiable ops of qkv. Each is a free function that computes its value and
// registers its backward beside it (in ops_*.cpp). All ops take and return Tensors of one
// dtype (float32 or float64; mixing them is an error). Shape errors throw
// std::invalid_argument naming the op and both shapes.
//
//   Tensor h = gelu(add(matmul(x, w1), b1));           // broadcasting add
//   Tensor p = softmax(causal_mask(scores));           // over the last axis
//   Tensor loss = cross_entropy(logits, targets, mask);  // mean over counted positions
//
// A new op is written the same way, outside core too, with core/op.hpp: compute the
// value, then record() the inputs and a backward that receives them back by index.
//
//   Tensor twice(const Tensor& x) {  // float64 only, for brevity
//     Tensor y = Tensor::empty(x.shape(), x.dtype());
//     for (std::size_t i = 0; i < x.numel(); ++i) y.data<double>()[i] = 2 * x.data<double>()[i];
//     record(y, "twice", {x}, [](const Tensor& grad_y, const Inputs& in) {
//       const double* g = grad_y.data<double>();
//       add_to_grad<double>(in[0], [g](std::size_t i) { return 2 * g[i]; });
//     });
//     return y;
//   }
#pragma once

#include <cstdint>
#include <vector>

#include "core/op.hpp"
#include "core/tensor.hpp"

namespace qkv::core {

// Integer token ids with a shape (e.g. (B, T)), for embedding lookups and targets.
struct Ids {
  Shape shape;
  std::vector<std::int32_t> values;  // row-major, shape_numel(shape) entries
};

// ---- elementwise, numpy broadcasting (ops_elementwise.cpp) ----
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor add(const Tensor& a, double b);
Tensor mul(const Tensor& a, double b);
Tensor neg(const Tensor& a);
Tensor exp(const Tensor& a);
Tensor log(const Tensor& a);
Tensor sqrt(const Tensor& a);
Tensor pow(const Tensor& a, double exponent);
Tensor tanh(const Tensor& a);
Tensor relu(const Tensor& a);
Tensor gelu(const Tensor& a);  // exact: x * Phi(x) = 0.5 x (1 + erf(x / sqrt 2))

inline Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
inline Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
inline Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
inline Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
inline Tensor operator-(const Tensor& a) { return neg(a); }
inline Tensor operator+(const Tensor& a, double b) { return add(a, b); }
inline Tensor operator-(const Tensor& a, double b) { return add(a, -b); }
inline Tensor operator*(const Tensor& a, double b) { return mul(a, b); }
inline Tensor operator/(const Tensor& a, double b) { return mul(a, 1.0 / b); }
inline Tensor operator*(double a, const Tensor& b) { return mul(b, a); }

// ---- reductions (ops_reduce.cpp); negative axes count from the end ----
Tensor sum(const Tensor& a);  // all elements -> shape []
Tensor sum(const Tensor& a, const std::vector<int>& axes, bool keepdim = false);
Tensor mean(const Tensor& a);
Tensor mean(const Tensor& a, const std::vector<int>& axes, bool keepdim = false);
// Max over axes; the gradient goes to the first maximal element of each reduced group.
Tensor max(const Tensor& a, const std::vector<int>& axes, bool keepdim = false);

// ---- shape (ops_shape.cpp) ----
Tensor reshape(const Tensor& a, const Shape& shape);  // shares the values
Tensor permute(const Tensor& a, const std::vector<int>& order);
Tensor transpose(const Tensor& a, int axis0, int axis1);
Tensor slice(const Tensor& a, int axis, std::size_t start, std::size_t end);  // [start, end)
Tensor concat(const std::vector<Tensor>& parts, int axis);
// Attention heads: (B, T, H*D) -> (B, H, T, D) and back.
Tensor split_heads(const Tensor& a, std::size_t heads);
Tensor merge_heads(const Tensor& a);

// ---- matrix products through core/blas (ops_matmul.cpp) ----
// 2-D: (M, K) x (K, N). Batched: leading dims broadcast numpy-style, e.g.
// (B, H, T, D) x (B, H, D, T), or (B, T, C) x (C, N) as one (B*T) x C product.
// trans_a / trans_b transpose the last two axes of a / b without copying.
Tensor matmul(const Tensor& a, const Tensor& b, bool trans_a = false, bool trans_b = false);
// x (..., in) times weight (out, in) transposed, plus bias (out) if defined: nn.Linear.
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor());
// gelu(linear(x, weight, bias)) as one op, the same values and gradients bit for bit: the
// bias is added in the GELU's pass instead of being copied into every row first, the
// pre-activation is never a tensor of its own, and the backward forms the bias gradient in
// the pass that multiplies by GELU's slope. FeedForward's fc1 and activation.
Tensor linear_gelu(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor());
// x (..., in) times weights (out_i, in) stacked along their out axis, plus their biases
// (none, or one per weight, each possibly undefined): (..., Σ out_i), the linear(x, w_i, b_i)
// side by side, e.g. attention's q, k and v as the column blocks of one (B, T, 3C) tensor.
// One gemm forward and one for dx (K = Σ out_i); below 512K multiply-adds one per weight,
// which OpenBLAS's small-matrix kernels make faster. Weights that lie one after another in
// memory (a flat parameter buffer, core/flat.hpp) are read in place, others are packed into
// a scratch copy; gradients land in each weight's and bias's own gradient, and a weight or
// bias that does not require grad (a frozen one) gets none.
//   Tensor qkv = linear_stacked(x, {wq, wk, wv}, {bq, bk, bv});   // (B, T, C) -> (B, T, 3C)
// The lists are Inputs (core/op.hpp: a vector over the graph's pooled blocks, made from a
// braced list or a std::vector) so that a training step's call allocates nothing.
Tensor linear_stacked(const Tensor& x, const Inputs& weights, const Inputs& biases = {});

// ---- nn (ops_nn.cpp) ----
Tensor softmax(const Tensor& a);      // over the last axis, numerically stable
Tensor log_softmax(const Tensor& a);  // over the last axis
// Where mask (broadcastable to a, nonzero = fill) is set, the value becomes `value`.
Tensor masked_fill(const Tensor& a, const Tensor& mask, double value);
// On the last two axes (T_q, T_k): positions j > i become -inf.
Tensor causal_mask(const Tensor& a);
// Normalizes the last axis; weight and bias (last-axis size) may be undefined.
Tensor layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps = 1e-5);
// Rows of weight (V, C) picked by ids: ids.shape + (C). Backward scatter-adds.
Tensor embedding(const Tensor& weight, const Ids& ids);
// Mean cross-entropy of logits (..., V) against targets (...), over the positions whose
// mask entry is nonzero (an empty mask counts every position). Fused with log-softmax.
Tensor cross_entropy(const Tensor& logits, const Ids& targets,
                     const std::vector<std::uint8_t>& mask = {});
// Inverted dropout: zeroes each element with probability p and scales the rest by
// 1/(1-p). Identity when !training or p == 0.
Tensor dropout(const Tensor& a, double p, bool training, Rng& rng);

// Fused multi-head scaled dot-product attention on (B, T, H*D) layouts, one BLAS call per
// (batch, head) through leading dimensions (no head copies).
//   q: (B, T, H*Dk), or (B, T, Dk) with q_shared: one tensor that every head uses (an
//      identity projection: each head sees the same raw vectors, without copies);
//   k: (B, S, H*Dk) or (B, S, Dk) with k_shared; v: (B, S, H*Dv) or (B, S, Dv) with v_shared.
// Returns (B, T, H*Dv): softmax(q kᵀ * scale + masks) v per head, heads side by side.
// A query row whose keys are all masked gets zero probabilities (and a zero output).
struct AttentionOptions {
  std::size_t heads = 1;
  double scale = 1.0;                      // usually 1/sqrt(Dk)
  bool causal = true;                      // key j > query i is masked
  bool q_shared = false, k_shared = false, v_shared = false;
  double dropout = 0.0;                    // on the probabilities, when training
  bool training = false;
  Rng* rng = nullptr;                      // needed when dropout > 0 and training
  const std::vector<std::uint8_t>* key_padding = nullptr;  // (B, S): nonzero = padding
  Tensor* probabilities = nullptr;         // if set, receives (B, H, T, S), detached
};
Tensor attention(const Tensor& q, const Tensor& k, const Tensor& v,
                 const AttentionOptions& options);
// The same over q, k and v side by side in one tensor qkv (B, T, 3·H·D): q is columns
// [0, H·D), k [H·D, 2·H·D), v [2·H·D, 3·H·D), read in place (no slices), as linear_stacked
// makes them. Its gradient is the three side by side. No operand is shared (the *_shared
// options must be false); causal or not, with key padding, dropout and probabilities as above.
Tensor attention_packed(const Tensor& qkv, const AttentionOptions& options);

}  // namespace qkv::core
