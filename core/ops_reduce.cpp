// Reductions over axes: sum, mean, max. The reduced shape is kept with size-1 axes
// internally, so that reading it "broadcast" to the input shape (stride 0 on reduced axes)
// gives both the forward accumulation and the backward spread in one strided loop.
#include <algorithm>
#include <limits>

#include "core/kernel_util.hpp"
#include "core/ops.hpp"

namespace qkv::core {

namespace {

struct Reduction {
  Shape kept;    // input shape with reduced axes set to 1
  Shape result;  // kept, or without the reduced axes
  detail::Strides kept_strides;  // kept read as the input shape (0 on reduced axes)
  std::size_t group = 1;         // elements per reduced group
  bool trailing = false;         // the reduced axes are the last ones: contiguous groups
};

Reduction plan(const char* op, const Shape& in, const std::vector<int>& axes, bool keepdim) {
  std::vector<bool> reduce(in.size(), false);
  for (int axis : axes) {
    const std::size_t a = detail::normalize_axis(op, axis, in.size());
    if (reduce[a]) detail::arg_error(op, "axis " + std::to_string(axis) + " given twice");
    reduce[a] = true;
  }
  Reduction r;
  r.kept = in;
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (!reduce[i]) {
      r.result.push_back(in[i]);
      continue;
    }
    r.group *= in[i];
    r.kept[i] = 1;
    if (keepdim) r.result.push_back(1);
  }
  r.kept_strides = detail::broadcast_strides(r.kept, in);
  r.trailing = std::is_sorted(reduce.begin(), reduce.end());  // false..false, true..true
  return r;
}

template <class T> Tensor sum_impl(const char* op, const Tensor& a, const Reduction& r, T scale) {
  Tensor out = Tensor::zeros(r.result, a.dtype());
  const T* pa = a.data<T>();
  T* po = out.data<T>();
  if (r.trailing) {  // out[k] = Σ of the k-th contiguous group, in a register
    const std::size_t groups = out.numel();
    for (std::size_t k = 0; k < groups; ++k) {
      const T* group = pa + k * r.group;
      T total = 0;
#pragma omp simd reduction(+ : total)
      for (std::size_t j = 0; j < r.group; ++j) total += group[j];
      po[k] = total;
    }
  } else {
    const detail::Strides unused(a.dim(), 0);
    detail::strided_loop(a.shape(), r.kept_strides, unused,
                         [&](std::size_t i, std::size_t o, std::size_t) { po[o] += pa[i]; });
  }
  if (scale != T(1)) {
    const std::size_t n = out.numel();
    for (std::size_t i = 0; i < n; ++i) po[i] *= scale;
  }
  record(out, op, {a}, [r, scale](const Tensor& g, const Inputs& in) {
    const Tensor& a = in[0];
    const T* pg = g.data<T>();
    T* ga = a.grad_buffer<T>();
    const detail::Strides unused(a.dim(), 0);
    detail::strided_loop(a.shape(), r.kept_strides, unused,
                         [&](std::size_t i, std::size_t o, std::size_t) { ga[i] += scale * pg[o]; });
  }, Reads::none());  // g alone: a sum's gradient is g spread back
  return out;
}

std::vector<int> all_axes(const Tensor& a) {
  std::vector<int> axes(a.dim());
  for (std::size_t i = 0; i < axes.size(); ++i) axes[i] = static_cast<int>(i);
  return axes;
}

}  // namespace

Tensor sum(const Tensor& a, const std::vector<int>& axes, bool keepdim) {
  detail::check_defined("sum", a, "input");
  const Reduction r = plan("sum", a.shape(), axes, keepdim);
  return dispatch(a.dtype(), [&](auto tag) { return sum_impl<decltype(tag)>("sum", a, r, 1); });
}

Tensor mean(const Tensor& a, const std::vector<int>& axes, bool keepdim) {
  detail::check_defined("mean", a, "input");
  const Reduction r = plan("mean", a.shape(), axes, keepdim);
  if (r.group == 0) detail::arg_error("mean", "reducing over an empty axis of shape " + shape_str(a.shape()));
  return dispatch(a.dtype(), [&](auto tag) {
    using T = decltype(tag);
    return sum_impl<T>("mean", a, r, T(1) / static_cast<T>(r.group));
  });
}

Tensor sum(const Tensor& a) { return sum(a, all_axes(a), false); }

Tensor mean(const Tensor& a) { return mean(a, all_axes(a), false); }

Tensor max(const Tensor& a, const std::vector<int>& axes, bool keepdim) {
  detail::check_defined("max", a, "input");
  const Reduction r = plan("max", a.shape(), axes, keepdim);
  if (r.group == 0) detail::arg_error("max", "reducing over an empty axis of shape " + shape_str(a.shape()));
  return dispatch(a.dtype(), [&](auto tag) {
    using T = decltype(tag);
    Tensor out = Tensor::full(r.result, -std::numeric_limits<double>::infinity(), a.dtype());
    const T* pa = a.data<T>();
    T* po = out.data<T>();
    // The first maximal element of each group receives the gradient.
    std::vector<std::size_t> argmax(out.numel(), 0);
    std::vector<bool> seen(out.numel(), false);
    const detail::Strides unused(a.dim(), 0);
    detail::strided_loop(a.shape(), r.kept_strides, unused, [&](std::size_t i, std::size_t o, std::size_t) {
      if (!seen[o] || pa[i] > po[o]) {
        po[o] = pa[i];
        argmax[o] = i;
        seen[o] = true;
      }
    });
    record(out, "max", {a}, [argmax = std::move(argmax)](const Tensor& g, const Inputs& in) {
      const T* pg = g.data<T>();
      T* ga = in[0].grad_buffer<T>();
      for (std::size_t o = 0; o < argmax.size(); ++o) ga[argmax[o]] += pg[o];
    }, Reads::none());  // the argmax is all it reads
    return out;
  });
}

}  // namespace qkv::core
