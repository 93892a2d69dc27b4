// Matrix products through core/blas: matmul (2-D and batched with broadcast batch axes,
// optional transposes of either operand), linear (x Wᵀ + b, the Linear layer's op) and
// linear_stacked (x [W_0; W_1; ...]ᵀ + [b_0, b_1, ...]: attention's fused Q, K, V product).
// Transposes are BLAS flags, never copies; backward gemms accumulate into the inputs'
// gradients with beta = 1, which also sums over broadcast batch axes for free.
//
// Gradients of C = op(A) op(B), with op(X) = X or Xᵀ:
//   dA = dC op(B)ᵀ        (A not transposed)      dA = op(B) dCᵀ   (A transposed)
//   dB = op(A)ᵀ dC        (B not transposed)      dB = dCᵀ op(A)   (B transposed)
#include <algorithm>
#include <numeric>
#include <string>
#include <vector>

#include "core/blas.hpp"
#include "core/buffer_pool.hpp"
#include "core/kernel_util.hpp"
#include "core/ops.hpp"
#include "core/vector_math.hpp"

namespace qkv::core {

namespace {

using detail::Strides;

struct MatmulPlan {
  std::size_t m = 0, n = 0, k = 0;
  std::size_t lda = 0, ldb = 0;
  Shape batch;                       // broadcast batch shape
  Strides a_batch, b_batch;  // element offsets of each operand per batch index
};

MatmulPlan plan(const Tensor& a, const Tensor& b, bool ta, bool tb) {
  const Shape& sa = a.shape();
  const Shape& sb = b.shape();
  if (sa.size() < 2 || sb.size() < 2)
    detail::shape_error("matmul", "both operands need at least 2 axes", sa, sb);
  const std::size_t ra = sa.size(), rb = sb.size();
  MatmulPlan p;
  const std::size_t a_rows = sa[ra - 2], a_cols = sa[ra - 1];
  const std::size_t b_rows = sb[rb - 2], b_cols = sb[rb - 1];
  p.m = ta ? a_cols : a_rows;
  p.k = ta ? a_rows : a_cols;
  p.n = tb ? b_rows : b_cols;
  const std::size_t kb = tb ? b_cols : b_rows;
  if (p.k != kb)
    detail::shape_error("matmul", std::string("inner dimensions differ") +
                                      (ta || tb ? " (after transposes)" : ""), sa, sb);
  p.lda = a_cols;
  p.ldb = b_cols;
  const Shape a_batch(sa.begin(), sa.end() - 2), b_batch(sb.begin(), sb.end() - 2);
  p.batch = detail::broadcast_shape("matmul", a_batch, b_batch);
  p.a_batch = detail::broadcast_strides(a_batch, p.batch);
  p.b_batch = detail::broadcast_strides(b_batch, p.batch);
  for (auto& s : p.a_batch) s *= a_rows * a_cols;
  for (auto& s : p.b_batch) s *= b_rows * b_cols;
  return p;
}

// Calls f(a_offset, b_offset, c_offset) for every batch index.
template <class F> void for_each_batch(const MatmulPlan& p, F&& f) {
  if (p.batch.empty()) {
    f(0, 0, 0);
    return;
  }
  detail::strided_loop(p.batch, p.a_batch, p.b_batch, [&](std::size_t i, std::size_t ao, std::size_t bo) {
    f(ao, bo, i * p.m * p.n);
  });
}

template <class T> Tensor matmul_impl(const Tensor& a, const Tensor& b, bool ta, bool tb) {
  MatmulPlan p = plan(a, b, ta, tb);
  Shape out_shape = p.batch;
  out_shape.push_back(p.m);
  out_shape.push_back(p.n);
  // (..., M, K) x (K, N): a's batch axes fold into M for one large product.
  if (b.dim() == 2 && !ta && a.dim() > 2) {
    p.m *= shape_numel(p.batch);
    p.batch.clear();
  }
  Tensor out = Tensor::empty(out_shape, a.dtype());
  {
    const T* pa = a.data<T>();
    const T* pb = b.data<T>();
    T* pc = out.data<T>();
    for_each_batch(p, [&](std::size_t ao, std::size_t bo, std::size_t co) {
      gemm(ta, tb, p.m, p.n, p.k, T(1), pa + ao, p.lda, pb + bo, p.ldb, T(0), pc + co, p.n);
    });
  }
  record(out, "matmul", {a, b}, [ta, tb, p](const Tensor& g, const Inputs& in) {
    const Tensor& a = in[0];
    const Tensor& b = in[1];
    const T* pa = a.data<T>();
    const T* pb = b.data<T>();
    const T* pg = g.data<T>();
    T* ga = a.requires_grad() ? a.grad_buffer<T>() : nullptr;
    T* gb = b.requires_grad() ? b.grad_buffer<T>() : nullptr;
    for_each_batch(p, [&](std::size_t ao, std::size_t bo, std::size_t co) {
      if (ga) {
        if (!ta) gemm(false, !tb, p.m, p.k, p.n, T(1), pg + co, p.n, pb + bo, p.ldb, T(1), ga + ao, p.lda);
        else gemm(tb, true, p.k, p.m, p.n, T(1), pb + bo, p.ldb, pg + co, p.n, T(1), ga + ao, p.lda);
      }
      if (gb) {
        if (!tb) gemm(!ta, false, p.k, p.n, p.m, T(1), pa + ao, p.lda, pg + co, p.n, T(1), gb + bo, p.ldb);
        else gemm(true, ta, p.n, p.k, p.m, T(1), pg + co, p.n, pa + ao, p.lda, T(1), gb + bo, p.ldb);
      }
    });
  });
  return out;
}

// sums[j] += Σ_r g[r, j] for g (rows, cols). __restrict: without it GCC checks for overlap
// on every row.
template <class T> void add_column_sums(const T* __restrict g, std::size_t rows, std::size_t cols,
                                        T* __restrict sums) {
  for (std::size_t r = 0; r < rows; ++r) {
    const T* row = g + r * cols;
#pragma omp simd
    for (std::size_t j = 0; j < cols; ++j) sums[j] += row[j];
  }
}

// The gradients of y = x Wᵀ (+ b) that need a gemm, from g = dy (rows, out): dx = g W and
// dW = gᵀ x, each for an input that requires grad.
template <class T> void linear_gemm_grads(const T* g, std::size_t rows, std::size_t in,
                                          std::size_t out_features, const Tensor& x, const Tensor& w) {
  if (x.requires_grad()) {  // dx = g W
    const GradTarget<T> gx = grad_for_write<T>(x);
    gemm(false, false, rows, in, out_features, T(1), g, out_features, w.data<T>(), in,
         gx.fresh ? T(0) : T(1), gx.data, in);
  }
  if (w.requires_grad()) {  // dW = gᵀ x
    const GradTarget<T> gw = grad_for_write<T>(w);
    gemm(true, false, out_features, in, rows, T(1), g, out_features, x.data<T>(), in,
         gw.fresh ? T(0) : T(1), gw.data, in);
  }
}

template <class T> Tensor linear_impl(const Tensor& x, const Tensor& w, const Tensor& bias) {
  const std::size_t in = w.shape()[1], out_features = w.shape()[0];
  const std::size_t rows = x.numel() / in;  // (..., in) as one (rows, in) matrix
  Shape out_shape = x.shape();
  out_shape.back() = out_features;
  Tensor out = Tensor::empty(out_shape, x.dtype());
  T* py = out.data<T>();
  T beta = T(0);
  if (bias.defined()) {  // start every row from the bias, then accumulate x Wᵀ onto it
    const T* pb = bias.data<T>();
    for (std::size_t r = 0; r < rows; ++r)
      std::copy(pb, pb + out_features, py + r * out_features);
    beta = T(1);
  }
  gemm(false, true, rows, out_features, in, T(1), x.data<T>(), in, w.data<T>(), in, beta, py,
       out_features);
  record(out, "linear", {x, w, bias}, [rows, in, out_features](const Tensor& g, const Inputs& inputs) {
    const Tensor& x = inputs[0];
    const Tensor& w = inputs[1];
    const Tensor& bias = inputs[2];
    const T* pg = g.data<T>();  // (rows, out)
    linear_gemm_grads(pg, rows, in, out_features, x, w);
    if (bias.defined() && bias.requires_grad())  // db = column sums of g
      add_column_sums(pg, rows, out_features, bias.grad_buffer<T>());
  }, Reads::first(2));  // x and W; the bias's gradient needs only g
  return out;
}

// ---- linear_gelu: gelu(x Wᵀ + b) in one op ----

// Rows per chunk of linear_gelu's forward pass: a whole number of 64-element blocks (where
// parallel_blocks cuts gelu's array), so that every element takes the SIMD or the scalar
// path it takes in gelu over the whole array, and about 16K elements, so that the GELU
// reads the chunk while the bias add has left it in cache.
std::size_t gelu_chunk_rows(std::size_t cols) {
  const std::size_t rows_per_block = 64 / std::gcd(cols, std::size_t{64});
  return rows_per_block * std::max<std::size_t>(1, 16384 / (rows_per_block * cols));
}

// y (rows, cols), holding x Wᵀ, becomes gelu(y + bias) in place (bias may be null), and
// slope (unless null) the GELU's derivative there.
template <class T> void add_bias_and_gelu(T* y, const T* bias, std::size_t rows, std::size_t cols,
                                          T* slope) {
  const std::size_t chunk = gelu_chunk_rows(cols);
  const std::size_t chunks = (rows + chunk - 1) / chunk;
  const std::size_t min_chunks = std::max<std::size_t>(1, detail::kParallelElements / (chunk * cols));
  parallel_for(chunks, min_chunks, [=](std::size_t begin, std::size_t end) {
    for (std::size_t c = begin; c < end; ++c) {
      const std::size_t r0 = c * chunk, r1 = std::min(rows, r0 + chunk);
      T* part = y + r0 * cols;
      if (bias)
        for (std::size_t r = r0; r < r1; ++r) {
          T* row = y + r * cols;
#pragma omp simd
          for (std::size_t j = 0; j < cols; ++j) row[j] += bias[j];
        }
      detail::gelu_array(part, part, slope ? slope + r0 * cols : nullptr, (r1 - r0) * cols);
    }
  });
}

// slope (rows, cols) becomes gh = g ⊙ slope in place, and, unless sums is null, sums[j] +=
// Σ_r gh[r, j] (the bias gradient, summed row by row as add_column_sums does). Split over
// the threads by columns, so that every sum runs over the rows in one order whatever the
// thread count.
template <class T> void gelu_grad_and_column_sums(const T* g, T* slope, std::size_t rows,
                                                  std::size_t cols, T* sums) {
  constexpr std::size_t block = 16;  // columns, one SIMD register of floats
  const std::size_t blocks = (cols + block - 1) / block;
  const std::size_t min_blocks = std::max<std::size_t>(1, detail::kParallelElements / (block * rows + 1));
  parallel_for(blocks, min_blocks, [=](std::size_t begin, std::size_t end) {
    const std::size_t j0 = begin * block, j1 = std::min(cols, end * block);
    for (std::size_t r = 0; r < rows; ++r) {
      const T* __restrict gr = g + r * cols;
      T* __restrict gh = slope + r * cols;
      if (sums) {
        T* __restrict s = sums;
#pragma omp simd
        for (std::size_t j = j0; j < j1; ++j) {
          gh[j] *= gr[j];
          s[j] += gh[j];
        }
      } else {
#pragma omp simd
        for (std::size_t j = j0; j < j1; ++j) gh[j] *= gr[j];
      }
    }
  });
}

template <class T> Tensor linear_gelu_impl(const Tensor& x, const Tensor& w, const Tensor& bias) {
  const std::size_t in = w.shape()[1], out_features = w.shape()[0];
  const std::size_t rows = x.numel() / in;
  Shape out_shape = x.shape();
  out_shape.back() = out_features;
  Tensor out = Tensor::empty(out_shape, x.dtype());
  T* py = out.data<T>();
  gemm(false, true, rows, out_features, in, T(1), x.data<T>(), in, w.data<T>(), in, T(0), py,
       out_features);
  const bool grad = needs_grad({&x, &w, &bias});
  Tensor slope = grad ? Tensor::empty(out_shape, x.dtype()) : Tensor();
  add_bias_and_gelu(py, bias.defined() ? bias.data<T>() : nullptr, rows, out_features,
                    grad ? slope.data<T>() : nullptr);
  if (!grad) return out;
  record(out, "linear_gelu", {x, w, bias},
         [rows, in, out_features, slope](const Tensor& g, const Inputs& inputs) mutable {
           const Tensor& x = inputs[0];
           const Tensor& w = inputs[1];
           const Tensor& bias = inputs[2];
           // The pre-activation's gradient (rows, out), the GELU's backward, written over the
           // slope (a backward runs once: the graph is freed as it goes), with the bias
           // gradient (its column sums) taken in the same pass.
           T* ph = slope.data<T>();
           T* db = bias.defined() && bias.requires_grad() ? bias.grad_buffer<T>() : nullptr;
           gelu_grad_and_column_sums(g.data<T>(), ph, rows, out_features, db);
           linear_gemm_grads(ph, rows, in, out_features, x, w);
         },
         Reads::first(2));  // x and W; the GELU's slope is saved, the bias's gradient needs g
  return out;
}

// ---- linear_stacked: the weights as one (Σ out, in) matrix ----

// Multiply-adds of the whole stacked product below which each block runs as its own gemm:
// the products that stay in OpenBLAS (under core/blas.cpp's 512K). Its small-matrix kernels
// multiply blocks without packing them, which made three 544x32x32 gemms faster than one
// 544x96x32 when OpenBLAS ran the tiny size; oneDNN runs the stacked product faster than
// its blocks (72.7 against 54.9 GFLOP/s, bench/gemm_libraries.py), and the tiny size, whose
// q, k, v product is 1.7M, ran 11% more tokens/s as one gemm.
constexpr std::size_t kBlockwiseMacs = std::size_t{1} << 19;

// The per-call lists below come from the graph's pooled blocks, not the heap: a warm
// training step allocates nothing (tests/allocations).
template <class X> using PooledVector = std::vector<X, PoolAllocator<X>>;

// Whether the tensors' values (or the given pointers) lie one after another in memory, as
// the parts of a flat buffer do (core/flat.hpp).
template <class T> bool consecutive(const PooledVector<const T*>& starts, const Inputs& parts) {
  for (std::size_t i = 1; i < parts.size(); ++i)
    if (starts[i] != starts[i - 1] + parts[i - 1].numel()) return false;
  return true;
}

template <class T> PooledVector<const T*> values_of(const Inputs& parts) {
  PooledVector<const T*> starts;
  for (const Tensor& t : parts) starts.push_back(t.data<T>());
  return starts;
}

// The stacked weights (total, in): their own values when they lie one after another,
// else a copy packed into `packed` (pooled; made once, then reused by the backward).
template <class T> const T* stacked(const Inputs& weights, std::size_t total, std::size_t in,
                                    Tensor& packed) {
  const PooledVector<const T*> starts = values_of<T>(weights);
  if (consecutive(starts, weights)) return starts[0];
  if (!packed.defined()) {
    packed = Tensor::empty({total, in}, weights[0].dtype());
    T* to = packed.data<T>();
    for (std::size_t i = 0; i < weights.size(); ++i)
      to = std::copy(starts[i], starts[i] + weights[i].numel(), to);
  }
  return packed.data<T>();
}

// Column offsets of the blocks: block i is columns [offsets[i], offsets[i + 1]).
PooledVector<std::size_t> block_offsets(const Inputs& weights) {
  PooledVector<std::size_t> offsets{0};
  for (const Tensor& w : weights) offsets.push_back(offsets.back() + w.shape()[0]);
  return offsets;
}

// Every row of y (rows, total) set to the biases side by side (an undefined one: zeros).
template <class T> void fill_with_biases(T* y, std::size_t rows, const Inputs& weights,
                                         const Inputs& biases) {
  if (rows == 0) return;
  const PooledVector<std::size_t> offsets = block_offsets(weights);
  for (std::size_t i = 0; i < biases.size(); ++i) {
    if (biases[i].defined()) std::copy(biases[i].data<T>(), biases[i].data<T>() + biases[i].numel(), y + offsets[i]);
    else std::fill(y + offsets[i], y + offsets[i + 1], T(0));
  }
  const std::size_t total = offsets.back();
  for (std::size_t r = 1; r < rows; ++r) std::copy(y, y + total, y + r * total);
}

// dW_i = g_iᵀ x for every weight that requires grad, g_i the block's columns of g (rows,
// total): one gemm into the whole (total, in) gradient when every weight wants one and
// their gradients lie one after another (a flat gradient buffer), one per block otherwise
// (or when `blockwise`).
template <class T> void stacked_weight_grads(const T* g, const T* x, std::size_t rows,
                                             std::size_t in, const Inputs& weights,
                                             bool blockwise) {
  const PooledVector<std::size_t> offsets = block_offsets(weights);
  const std::size_t total = offsets.back();
  PooledVector<GradTarget<T>> targets;
  PooledVector<const T*> starts;
  for (const Tensor& w : weights) {
    if (!w.requires_grad()) continue;
    targets.push_back(grad_for_write<T>(w));
    starts.push_back(targets.back().data);
  }
  const bool all_fresh_alike = std::all_of(targets.begin(), targets.end(), [&](const GradTarget<T>& t) {
    return t.fresh == targets[0].fresh;
  });
  if (!blockwise && targets.size() == weights.size() && all_fresh_alike &&
      consecutive(starts, weights)) {
    gemm(true, false, total, in, rows, T(1), g, total, x, in, targets[0].fresh ? T(0) : T(1),
         targets[0].data, in);
    return;
  }
  std::size_t t = 0;
  for (std::size_t i = 0; i < weights.size(); ++i) {
    if (!weights[i].requires_grad()) continue;
    const std::size_t n = offsets[i + 1] - offsets[i];
    gemm(true, false, n, in, rows, T(1), g + offsets[i], total, x, in,
         targets[t].fresh ? T(0) : T(1), targets[t].data, in);
    ++t;
  }
}

// db_i = column sums of g_i for every bias that requires grad: one pass over g.
template <class T> void stacked_bias_grads(const T* g, std::size_t rows, const Inputs& weights,
                                           const Inputs& biases) {
  const PooledVector<std::size_t> offsets = block_offsets(weights);
  const std::size_t total = offsets.back();
  T* sums = detail::thread_scratch<T>(0, total);
  std::fill(sums, sums + total, T(0));
  for (std::size_t r = 0; r < rows; ++r) {
    const T* row = g + r * total;
#pragma omp simd
    for (std::size_t j = 0; j < total; ++j) sums[j] += row[j];
  }
  for (std::size_t i = 0; i < biases.size(); ++i) {
    if (!biases[i].defined() || !biases[i].requires_grad()) continue;
    const GradTarget<T> gb = grad_for_write<T>(biases[i]);
    const T* block = sums + offsets[i];
    store_grad(gb.data, gb.fresh, biases[i].numel(), [block](std::size_t j) { return block[j]; });
  }
}

// y (rows, total) += x [W_0; W_1; ...]ᵀ: one gemm over the stacked weights, or one per
// block into its columns.
template <class T> void stacked_forward(const T* x, std::size_t rows, std::size_t in,
                                        const Inputs& weights, bool blockwise, T beta, T* y,
                                        Tensor& packed) {
  const PooledVector<std::size_t> offsets = block_offsets(weights);
  const std::size_t total = offsets.back();
  if (!blockwise) {
    const T* w = stacked<T>(weights, total, in, packed);
    gemm(false, true, rows, total, in, T(1), x, in, w, in, beta, y, total);
    return;
  }
  for (std::size_t i = 0; i < weights.size(); ++i)
    gemm(false, true, rows, offsets[i + 1] - offsets[i], in, T(1), x, in, weights[i].data<T>(), in,
         beta, y + offsets[i], total);
}

// dx = g [W_0; W_1; ...]: one gemm over K = total, or one per block, summed.
template <class T> void stacked_input_grad(const T* g, std::size_t rows, std::size_t in,
                                           const Inputs& weights, bool blockwise,
                                           const Tensor& packed, const Tensor& x) {
  const PooledVector<std::size_t> offsets = block_offsets(weights);
  const std::size_t total = offsets.back();
  const GradTarget<T> gx = grad_for_write<T>(x);
  if (!blockwise) {
    Tensor scratch = packed;
    const T* w = stacked<T>(weights, total, in, scratch);
    gemm(false, false, rows, in, total, T(1), g, total, w, in, gx.fresh ? T(0) : T(1), gx.data, in);
    return;
  }
  for (std::size_t i = 0; i < weights.size(); ++i)
    gemm(false, false, rows, in, offsets[i + 1] - offsets[i], T(1), g + offsets[i], total,
         weights[i].data<T>(), in, i == 0 && gx.fresh ? T(0) : T(1), gx.data, in);
}

template <class T> Tensor linear_stacked_impl(const Tensor& x, const Inputs& weights,
                                              const Inputs& biases) {
  const std::size_t in = x.shape().back(), count = weights.size();
  const std::size_t total = block_offsets(weights).back();
  const std::size_t rows = x.numel() / in;  // (..., in) as one (rows, in) matrix
  const bool blockwise = rows * in * total < kBlockwiseMacs;
  Shape out_shape = x.shape();
  out_shape.back() = total;
  Tensor out = Tensor::empty(out_shape, x.dtype());
  T* py = out.data<T>();
  if (!biases.empty()) fill_with_biases(py, rows, weights, biases);
  Tensor packed;  // the stacked weights' copy, when they do not lie one after another
  stacked_forward(x.data<T>(), rows, in, weights, blockwise, biases.empty() ? T(0) : T(1), py,
                  packed);  // (rows, in) x (in, total)
  Inputs inputs{x};
  inputs.insert(inputs.end(), weights.begin(), weights.end());
  inputs.insert(inputs.end(), biases.begin(), biases.end());
  record(out, "linear_stacked", std::move(inputs),
         [rows, in, count, blockwise, packed](const Tensor& grad, const Inputs& in_all) {
           const Tensor& x = in_all[0];
           const Inputs weights(in_all.begin() + 1, in_all.begin() + 1 + count);
           const Inputs biases(in_all.begin() + 1 + count, in_all.end());
           const T* pg = grad.data<T>();  // (rows, total)
           if (x.requires_grad()) stacked_input_grad(pg, rows, in, weights, blockwise, packed, x);
           stacked_weight_grads(pg, x.data<T>(), rows, in, weights, blockwise);
           if (!biases.empty()) stacked_bias_grads(pg, rows, weights, biases);
         },
         Reads::first(1 + count));  // x and the weights; the biases' gradients need only g
  return out;
}

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b, bool trans_a, bool trans_b) {
  detail::check_defined("matmul", a, "a");
  detail::check_defined("matmul", b, "b");
  detail::check_same_dtype("matmul", a, b);
  return dispatch(a.dtype(), [&](auto tag) { return matmul_impl<decltype(tag)>(a, b, trans_a, trans_b); });
}

namespace {

void check_linear(const char* op, const Tensor& x, const Tensor& weight, const Tensor& bias) {
  detail::check_defined(op, x, "input");
  detail::check_defined(op, weight, "weight");
  detail::check_same_dtype(op, x, weight);
  if (weight.dim() != 2 || x.dim() < 1 || x.shape().back() != weight.shape()[1])
    detail::shape_error(op, "input (..., in) needs weight (out, in)", x.shape(), weight.shape());
  if (bias.defined()) {
    detail::check_same_dtype(op, x, bias);
    if (bias.dim() != 1 || bias.shape()[0] != weight.shape()[0])
      detail::shape_error(op, "bias must be (out) for weight (out, in)", bias.shape(),
                          weight.shape());
  }
}

}  // namespace

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  check_linear("linear", x, weight, bias);
  return dispatch(x.dtype(), [&](auto tag) { return linear_impl<decltype(tag)>(x, weight, bias); });
}

Tensor linear_gelu(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  check_linear("linear_gelu", x, weight, bias);
  return dispatch(x.dtype(), [&](auto tag) { return linear_gelu_impl<decltype(tag)>(x, weight, bias); });
}

Tensor linear_stacked(const Tensor& x, const Inputs& weights, const Inputs& biases) {
  const char* op = "linear_stacked";
  detail::check_defined(op, x, "input");
  if (weights.empty()) detail::arg_error(op, "needs at least one weight, got none");
  if (!biases.empty() && biases.size() != weights.size())
    detail::arg_error(op, "needs no biases or one per weight: got " + std::to_string(biases.size()) +
                              " biases for " + std::to_string(weights.size()) + " weights");
  for (std::size_t i = 0; i < weights.size(); ++i) {
    const std::string which = "weight " + std::to_string(i);
    detail::check_defined(op, weights[i], which.c_str());
    detail::check_same_dtype(op, x, weights[i]);
    if (weights[i].dim() != 2 || x.dim() < 1 || x.shape().back() != weights[i].shape()[1])
      detail::shape_error(op, "input (..., in) needs every weight (out, in)", x.shape(),
                          weights[i].shape());
    if (i >= biases.size() || !biases[i].defined()) continue;
    detail::check_same_dtype(op, x, biases[i]);
    if (biases[i].dim() != 1 || biases[i].shape()[0] != weights[i].shape()[0])
      detail::shape_error(op, "bias " + std::to_string(i) + " must be (out) for weight " +
                                  std::to_string(i) + " (out, in)",
                          biases[i].shape(), weights[i].shape());
  }
  return dispatch(x.dtype(), [&](auto tag) {
    return linear_stacked_impl<decltype(tag)>(x, weights, biases);
  });
}

}  // namespace qkv::core
