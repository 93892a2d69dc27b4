// Matrix products through core/blas: matmul (2-D and batched with broadcast batch axes,
// optional transposes of either operand) and linear (x Wᵀ + b, the Linear layer's op).
// Transposes are BLAS flags, never copies; backward gemms accumulate into the inputs'
// gradients with beta = 1, which also sums over broadcast batch axes for free.
//
// Gradients of C = op(A) op(B), with op(X) = X or Xᵀ:
//   dA = dC op(B)ᵀ        (A not transposed)      dA = op(B) dCᵀ   (A transposed)
//   dB = op(A)ᵀ dC        (B not transposed)      dB = dCᵀ op(A)   (B transposed)
#include "core/blas.hpp"
#include "core/kernel_util.hpp"
#include "core/ops.hpp"

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
    if (x.requires_grad()) {  // dx = g W
      const GradTarget<T> gx = grad_for_write<T>(x);
      gemm(false, false, rows, in, out_features, T(1), pg, out_features, w.data<T>(), in,
           gx.fresh ? T(0) : T(1), gx.data, in);
    }
    if (w.requires_grad()) {  // dW = gᵀ x
      const GradTarget<T> gw = grad_for_write<T>(w);
      gemm(true, false, out_features, in, rows, T(1), pg, out_features, x.data<T>(), in,
           gw.fresh ? T(0) : T(1), gw.data, in);
    }
    if (bias.defined() && bias.requires_grad()) {  // db = column sums of g
      T* gb = bias.grad_buffer<T>();
      for (std::size_t r = 0; r < rows; ++r)
        for (std::size_t j = 0; j < out_features; ++j) gb[j] += pg[r * out_features + j];
    }
  });
  return out;
}

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b, bool trans_a, bool trans_b) {
  detail::check_defined("matmul", a, "a");
  detail::check_defined("matmul", b, "b");
  detail::check_same_dtype("matmul", a, b);
  return dispatch(a.dtype(), [&](auto tag) { return matmul_impl<decltype(tag)>(a, b, trans_a, trans_b); });
}

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  detail::check_defined("linear", x, "input");
  detail::check_defined("linear", weight, "weight");
  detail::check_same_dtype("linear", x, weight);
  if (weight.dim() != 2 || x.dim() < 1 || x.shape().back() != weight.shape()[1])
    detail::shape_error("linear", "input (..., in) needs weight (out, in)", x.shape(), weight.shape());
  if (bias.defined()) {
    detail::check_same_dtype("linear", x, bias);
    if (bias.dim() != 1 || bias.shape()[0] != weight.shape()[0])
      detail::shape_error("linear", "bias must be (out) for weight (out, in)", bias.shape(),
                          weight.shape());
  }
  return dispatch(x.dtype(), [&](auto tag) { return linear_impl<decltype(tag)>(x, weight, bias); });
}

}  // namespace qkv::core
