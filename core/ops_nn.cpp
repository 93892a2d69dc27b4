// Neural-network ops written as fused loops over rows of the last axis: softmax,
// log-softmax, masking, layer norm, embedding lookup, cross-entropy and dropout. Each
// keeps only what its backward needs (the output, or per-row statistics).
#include <cmath>
#include <limits>

#include "core/kernel_util.hpp"
#include "core/ops.hpp"
#include "core/random.hpp"
#include "core/vector_math.hpp"

namespace qkv::core {

namespace {

std::size_t last_axis(const char* op, const Tensor& a) {
  detail::check_defined(op, a, "input");
  if (a.dim() == 0) detail::arg_error(op, "needs at least one axis, got a scalar");
  return a.shape().back();
}

}  // namespace

Tensor softmax(const Tensor& a) {
  const std::size_t n = last_axis("softmax", a);
  return dispatch(a.dtype(), [&](auto tag) {
    using T = decltype(tag);
    Tensor out = Tensor::empty(a.shape(), a.dtype());
    const std::size_t rows = n ? a.numel() / n : 0;
    for (std::size_t r = 0; r < rows; ++r) detail::softmax_row(a.data<T>() + r * n, out.data<T>() + r * n, n);
    // dx = y ⊙ (dy − Σ dy ⊙ y) per row.
    record(out, "softmax", {a}, [y = out.detach(), n, rows](const Tensor& g, const Inputs& in) {
      const T* py = y.data<T>();
      const T* pg = g.data<T>();
      const auto [ga, fresh] = grad_for_write<T>(in[0]);
      for (std::size_t r = 0; r < rows; ++r) {
        const std::size_t o = r * n;
        T dot = 0;
#pragma omp simd reduction(+ : dot)
        for (std::size_t j = 0; j < n; ++j) dot += pg[o + j] * py[o + j];
        store_grad(ga + o, fresh, n, [&](std::size_t j) { return py[o + j] * (pg[o + j] - dot); });
      }
    }, Reads::none());  // y stands for x
    return out;
  });
}

Tensor log_softmax(const Tensor& a) {
  const std::size_t n = last_axis("log_softmax", a);
  return dispatch(a.dtype(), [&](auto tag) {
    using T = decltype(tag);
    Tensor out = Tensor::empty(a.shape(), a.dtype());
    const std::size_t rows = n ? a.numel() / n : 0;
    const T* px = a.data<T>();
    T* py = out.data<T>();
    std::vector<T> scratch(n);
    for (std::size_t r = 0; r < rows; ++r) {
      const T lse = detail::log_sum_exp_row(px + r * n, scratch.data(), n);
      for (std::size_t j = 0; j < n; ++j) py[r * n + j] = px[r * n + j] - lse;
    }
    // dx = dy − exp(y) Σ dy per row.
    record(out, "log_softmax", {a}, [y = out.detach(), n, rows](const Tensor& g, const Inputs& in) {
      const T* py = y.data<T>();
      const T* pg = g.data<T>();
      const auto [ga, fresh] = grad_for_write<T>(in[0]);
      std::vector<T> p(n);
      for (std::size_t r = 0; r < rows; ++r) {
        const std::size_t o = r * n;
        T total = 0;
#pragma omp simd reduction(+ : total)
        for (std::size_t j = 0; j < n; ++j) total += pg[o + j];
        detail::exp_array(py + o, p.data(), n);
        store_grad(ga + o, fresh, n, [&](std::size_t j) { return pg[o + j] - p[j] * total; });
      }
    }, Reads::none());  // y stands for x
    return out;
  });
}

Tensor masked_fill(const Tensor& a, const Tensor& mask, double value) {
  detail::check_defined("masked_fill", a, "input");
  detail::check_defined("masked_fill", mask, "mask");
  const Shape out_shape = detail::broadcast_shape("masked_fill", a.shape(), mask.shape());
  if (out_shape != a.shape())
    detail::shape_error("masked_fill", "mask must broadcast to the input's shape", a.shape(),
                        mask.shape());
  const std::vector<double> m = mask.to_vector();
  std::vector<std::uint8_t> fill(a.numel());
  const detail::Strides ms = detail::broadcast_strides(mask.shape(), a.shape());
  detail::strided_loop(a.shape(), ms, ms, [&](std::size_t i, std::size_t im, std::size_t) {
    fill[i] = m[im] != 0.0;
  });
  return dispatch(a.dtype(), [&](auto tag) {
    using T = decltype(tag);
    Tensor out = Tensor::empty(a.shape(), a.dtype());
    const T* pa = a.data<T>();
    T* po = out.data<T>();
    for (std::size_t i = 0; i < fill.size(); ++i) po[i] = fill[i] ? static_cast<T>(value) : pa[i];
    record(out, "masked_fill", {a}, [fill = std::move(fill)](const Tensor& g, const Inputs& in) {
      const T* pg = g.data<T>();
      T* ga = in[0].grad_buffer<T>();
      for (std::size_t i = 0; i < fill.size(); ++i)
        if (!fill[i]) ga[i] += pg[i];
    }, Reads::none());  // the mask is all it reads
    return out;
  });
}

Tensor causal_mask(const Tensor& a) {
  detail::check_defined("causal_mask", a, "input");
  if (a.dim() < 2) detail::arg_error("causal_mask", "needs (..., T_q, T_k), got " + shape_str(a.shape()));
  const std::size_t tq = a.shape()[a.dim() - 2], tk = a.shape().back();
  std::vector<double> above_diagonal(tq * tk, 0.0);
  for (std::size_t i = 0; i < tq; ++i)
    for (std::size_t j = i + 1; j < tk; ++j) above_diagonal[i * tk + j] = 1.0;
  const Tensor mask = Tensor::from_vector(above_diagonal, {tq, tk});
  return masked_fill(a, mask, -std::numeric_limits<double>::infinity());
}

namespace {

// One row of layer_norm_forward. The pointers are parameters, not a lambda's captures:
// GCC reads captured pointers under `omp simd` with gathers (half of layer norm's time).
template <class T>
T layer_norm_row(const T* x, const T* w, const T* b, T eps, std::size_t n, T* y, T* xh) {
  T mu = 0;
#pragma omp simd reduction(+ : mu)
  for (std::size_t j = 0; j < n; ++j) mu += x[j];
  mu /= static_cast<T>(n);
  T var = 0;
#pragma omp simd reduction(+ : var)
  for (std::size_t j = 0; j < n; ++j) {
    xh[j] = x[j] - mu;
    var += xh[j] * xh[j];
  }
  var /= static_cast<T>(n);  // biased, as PyTorch
  const T rs = T(1) / std::sqrt(var + eps);
  for (std::size_t j = 0; j < n; ++j) {
    xh[j] *= rs;
    y[j] = xh[j] * w[j] + b[j];
  }
  return rs;
}

// Layer norm over rows of n, llm.c style: x (rows, n) -> y (rows, n), keeping what the
// backward needs, x̂ = (x − μ) σ⁻¹ (rows, n) and σ⁻¹ (rows). w and b are (n).
template <class T>
void layer_norm_forward(const T* x, const T* w, const T* b, T eps, std::size_t rows,
                        std::size_t n, T* y, T* xhat, T* rstd) {
  detail::parallel_rows(rows, n, [=](std::size_t begin, std::size_t end) {
    for (std::size_t r = begin; r < end; ++r)
      rstd[r] = layer_norm_row(x + r * n, w, b, eps, n, y + r * n, xhat + r * n);
  });
}

// dx of one row of layer_norm_backward (see there); pointers as parameters for the reason
// layer_norm_row gives.
template <class T>
void layer_norm_backward_row(const T* g, const T* xh, const T* w, T rs, std::size_t n, T* dx,
                             bool dx_fresh) {
  T mean_g = 0, mean_gx = 0;
#pragma omp simd reduction(+ : mean_g, mean_gx)
  for (std::size_t j = 0; j < n; ++j) {
    const T gh = g[j] * w[j];
    mean_g += gh;
    mean_gx += gh * xh[j];
  }
  mean_g /= static_cast<T>(n);
  mean_gx /= static_cast<T>(n);
  store_grad(dx, dx_fresh, n, [&](std::size_t j) { return rs * (g[j] * w[j] - mean_g - xh[j] * mean_gx); });
}

// dw += dy ⊙ x̂ and db += dy for one row. __restrict: the four arrays never overlap, and
// without it GCC checks for overlap on every row of 32 or 128 elements.
template <class T>
void layer_norm_param_grads_row(const T* __restrict g, const T* __restrict xh, std::size_t n,
                                T* __restrict dw, T* __restrict db) {
  for (std::size_t j = 0; j < n; ++j) {
    dw[j] += g[j] * xh[j];
    db[j] += g[j];
  }
}

// The backward of layer_norm_forward. With ĝ = dy ⊙ w, per row:
//   dx = σ⁻¹ (ĝ − mean(ĝ) − x̂ mean(ĝ ⊙ x̂)),  dw += Σ dy ⊙ x̂,  db += Σ dy.
// dy, x̂: (rows, n); dx, dw, db may be null (not wanted); dx is written with = when
// dx_fresh, added to otherwise. The rows of dx are split over the threads; dw and db sum
// over the rows in row order on one thread, as without threads. On one thread a row's
// dx follows its dw and db while the row is in cache: one pass over dy and x̂, not two
// (they are megabytes at medium, where these passes are bound by memory), and the same
// row functions in the same order, so the same bits.
template <class T>
void layer_norm_backward(const T* dy, const T* xhat, const T* rstd, const T* w, std::size_t rows,
                         std::size_t n, T* dx, bool dx_fresh, T* dw, T* db) {
  if (dx && dw && db && parallel_threads() == 1) {
    for (std::size_t r = 0; r < rows; ++r) {
      layer_norm_param_grads_row(dy + r * n, xhat + r * n, n, dw, db);
      layer_norm_backward_row(dy + r * n, xhat + r * n, w, rstd[r], n, dx + r * n, dx_fresh);
    }
    return;
  }
  if (dw && db) {  // one pass over the rows for both: dy is read once
    for (std::size_t r = 0; r < rows; ++r)
      layer_norm_param_grads_row(dy + r * n, xhat + r * n, n, dw, db);
  } else {
    for (std::size_t r = 0; r < rows; ++r) {
      const T* xh = xhat + r * n;
      const T* g = dy + r * n;
      if (dw)
        for (std::size_t j = 0; j < n; ++j) dw[j] += g[j] * xh[j];
      if (db)
        for (std::size_t j = 0; j < n; ++j) db[j] += g[j];
    }
  }
  if (!dx) return;
  detail::parallel_rows(rows, n, [=](std::size_t begin, std::size_t end) {
    for (std::size_t r = begin; r < end; ++r)
      layer_norm_backward_row(dy + r * n, xhat + r * n, w, rstd[r], n, dx + r * n, dx_fresh);
  });
}

template <class T>
Tensor layer_norm_impl(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps,
                       std::size_t n) {
  const std::size_t rows = n ? x.numel() / n : 0;  // (..., n) -> (rows, n)
  // Missing weight / bias act as ones / zeros, so the row loops have no branches.
  const std::vector<T> ones(weight.defined() ? 0 : n, T(1)), zeros(bias.defined() ? 0 : n, T(0));
  const T* pw = weight.defined() ? weight.data<T>() : ones.data();
  const T* pb = bias.defined() ? bias.data<T>() : zeros.data();
  Tensor out = Tensor::empty(x.shape(), x.dtype());
  // x̂ in a Tensor for its uninitialized storage.
  Tensor xhat = Tensor::empty(x.shape(), x.dtype());
  Tensor rstd = Tensor::empty({rows}, x.dtype());  // a Tensor: its buffer is pooled
  layer_norm_forward(x.data<T>(), pw, pb, static_cast<T>(eps), rows, n, out.data<T>(),
                     xhat.data<T>(), rstd.data<T>());
  if (!needs_grad({&x, &weight, &bias})) return out;
  record(out, "layer_norm", {x, weight, bias},
         [n, rows, xhat, rstd](const Tensor& g, const Inputs& in) {
           const Tensor& x = in[0];
           const Tensor& weight = in[1];
           const Tensor& bias = in[2];
           const std::vector<T> ones(weight.defined() ? 0 : n, T(1));
           const T* pw = weight.defined() ? weight.data<T>() : ones.data();
           GradTarget<T> gx{nullptr, false};
           if (x.requires_grad()) gx = grad_for_write<T>(x);
           T* gw = weight.defined() && weight.requires_grad() ? weight.grad_buffer<T>() : nullptr;
           T* gb = bias.defined() && bias.requires_grad() ? bias.grad_buffer<T>() : nullptr;
           layer_norm_backward(g.data<T>(), xhat.data<T>(), rstd.data<T>(), pw, rows, n, gx.data,
                               gx.fresh, gw, gb);
         },
         Reads::only({1}));  // the weight; x̂ and σ⁻¹ stand for x

  return out;
}

}  // namespace

Tensor layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps) {
  const std::size_t n = last_axis("layer_norm", x);
  for (const Tensor* p : {&weight, &bias}) {
    if (!p->defined()) continue;
    detail::check_same_dtype("layer_norm", x, *p);
    if (p->dim() != 1 || p->shape()[0] != n)
      detail::shape_error("layer_norm", "weight and bias must match the last axis", x.shape(),
                          p->shape());
  }
  if (!(eps > 0)) detail::arg_error("layer_norm", "eps must be positive, got " + std::to_string(eps));
  return dispatch(x.dtype(), [&](auto tag) {
    return layer_norm_impl<decltype(tag)>(x, weight, bias, eps, n);
  });
}

Tensor embedding(const Tensor& weight, const Ids& ids) {
  detail::check_defined("embedding", weight, "weight");
  if (weight.dim() != 2)
    detail::arg_error("embedding", "weight must be (V, C), got " + shape_str(weight.shape()));
  if (ids.values.size() != shape_numel(ids.shape))
    detail::arg_error("embedding", std::to_string(ids.values.size()) + " ids do not fill shape " +
                                       shape_str(ids.shape));
  const std::size_t vocab = weight.shape()[0], width = weight.shape()[1];
  for (std::int32_t id : ids.values)
    if (id < 0 || static_cast<std::size_t>(id) >= vocab)
      detail::arg_error("embedding", "id " + std::to_string(id) + " out of range for " +
                                         std::to_string(vocab) + " rows");
  Shape out_shape = ids.shape;
  out_shape.push_back(width);
  return dispatch(weight.dtype(), [&](auto tag) {
    using T = decltype(tag);
    Tensor out = Tensor::empty(out_shape, weight.dtype());
    const T* pw = weight.data<T>();
    T* po = out.data<T>();
    for (std::size_t i = 0; i < ids.values.size(); ++i)
      std::copy(pw + ids.values[i] * width, pw + (ids.values[i] + 1) * width, po + i * width);
    // Scatter-add: a row picked several times receives the sum of its gradients.
    record(out, "embedding", {weight}, [ids = ids.values, width](const Tensor& g, const Inputs& in) {
      const T* pg = g.data<T>();
      T* gw = in[0].grad_buffer<T>();
      for (std::size_t i = 0; i < ids.size(); ++i)
        for (std::size_t j = 0; j < width; ++j) gw[ids[i] * width + j] += pg[i * width + j];
    }, Reads::none());  // the ids are all it reads
    return out;
  });
}

Tensor cross_entropy(const Tensor& logits, const Ids& targets, const std::vector<std::uint8_t>& mask) {
  const std::size_t vocab = last_axis("cross_entropy", logits);
  Shape expected(logits.shape().begin(), logits.shape().end() - 1);
  if (targets.shape != expected || targets.values.size() != shape_numel(targets.shape))
    detail::shape_error("cross_entropy", "targets must have the logits' shape without the last axis",
                        logits.shape(), targets.shape);
  const std::size_t rows = targets.values.size();
  if (!mask.empty() && mask.size() != rows)
    detail::arg_error("cross_entropy", "mask has " + std::to_string(mask.size()) + " entries for " +
                                           std::to_string(rows) + " positions");
  std::size_t counted = 0;
  for (std::size_t r = 0; r < rows; ++r) {
    if (!mask.empty() && !mask[r]) continue;
    ++counted;
    const std::int32_t t = targets.values[r];
    if (t < 0 || static_cast<std::size_t>(t) >= vocab)
      detail::arg_error("cross_entropy", "target " + std::to_string(t) + " at position " +
                                             std::to_string(r) + " out of range for " +
                                             std::to_string(vocab) + " classes");
  }
  if (counted == 0) detail::arg_error("cross_entropy", "the mask counts no position");
  return dispatch(logits.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* px = logits.data<T>();
    Tensor lse_rows = Tensor::zeros({rows}, logits.dtype());  // a Tensor: its buffer is pooled
    T* lse = lse_rows.data<T>();
    detail::parallel_rows(rows, vocab, [&](std::size_t begin, std::size_t end) {
      T* scratch = detail::thread_scratch<T>(0, vocab);
      for (std::size_t r = begin; r < end; ++r)
        if (mask.empty() || mask[r]) lse[r] = detail::log_sum_exp_row(px + r * vocab, scratch, vocab);
    });
    double total = 0;  // in row order, as on one thread
    for (std::size_t r = 0; r < rows; ++r)
      if (mask.empty() || mask[r]) total += static_cast<double>(lse[r] - px[r * vocab + targets.values[r]]);
    Tensor out = Tensor::scalar(total / static_cast<double>(counted), logits.dtype());
    // d loss / d x = (softmax(x) − onehot(t)) / counted on counted rows.
    record(out, "cross_entropy", {logits},
           [t = targets.values, mask, lse_rows, vocab, counted](const Tensor& g,
                                                                 const Inputs& in) {
             const T* px = in[0].data<T>();
             const T* lse = lse_rows.data<T>();
             const GradTarget<T> gt = grad_for_write<T>(in[0]);
             T* gx = gt.data;
             const bool fresh = gt.fresh;
             const T scale = g.data<T>()[0] / static_cast<T>(counted);
             detail::parallel_rows(t.size(), vocab, [&](std::size_t begin, std::size_t end) {
               T* p = detail::thread_scratch<T>(0, vocab);
               for (std::size_t r = begin; r < end; ++r) {
                 const std::size_t o = r * vocab;
                 if (!mask.empty() && !mask[r]) {  // no gradient; a fresh buffer needs its zeros
                   if (fresh) std::fill(gx + o, gx + o + vocab, T(0));
                   continue;
                 }
                 for (std::size_t j = 0; j < vocab; ++j) p[j] = px[o + j] - lse[r];
                 detail::exp_array(p, p, vocab);  // softmax(x) of the row
                 store_grad(gx + o, fresh, vocab, [&](std::size_t j) { return scale * p[j]; });
                 gx[o + t[r]] -= scale;
               }
             });
           });
    return out;
  });
}

Tensor dropout(const Tensor& a, double p, bool training, Rng& rng) {
  detail::check_defined("dropout", a, "input");
  if (!(p >= 0.0 && p < 1.0)) detail::arg_error("dropout", "p must be in [0, 1), got " + std::to_string(p));
  if (!training || p == 0.0) return a;
  return dispatch(a.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T keep_scale = static_cast<T>(1.0 / (1.0 - p));
    std::vector<T> scale(a.numel());
    for (auto& s : scale) s = rng.uniform() < p ? T(0) : keep_scale;
    Tensor out = Tensor::empty(a.shape(), a.dtype());
    const T* pa = a.data<T>();
    T* po = out.data<T>();
    for (std::size_t i = 0; i < scale.size(); ++i) po[i] = pa[i] * scale[i];
    record(out, "dropout", {a}, [scale = std::move(scale)](const Tensor& g, const Inputs& in) {
      const T* pg = g.data<T>();
      T* ga = in[0].grad_buffer<T>();
      for (std::size_t i = 0; i < scale.size(); ++i) ga[i] += pg[i] * scale[i];
    }, Reads::none());  // the scales are all it reads
    return out;
  });
}

}  // namespace qkv::core
