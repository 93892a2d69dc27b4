// Shape ops: reshape (shares the values), permute/transpose, slice, concat, and the
// split/merge of attention heads composed from them. Copies go through strided_loop with
// the source read at permuted or offset strides.
#include <numeric>

#include "core/kernel_util.hpp"
#include "core/node.hpp"
#include "core/ops.hpp"

namespace qkv::core {

namespace {

using detail::Strides;

// out[i] = in[base + offset(i)] over out_shape, where offset follows in_strides; backward
// adds the gradient back through the same map.
template <class T>
Tensor gather_strided(const char* op, const Tensor& a, const Shape& out_shape,
                      const Strides& in_strides, std::size_t base) {
  Tensor out = Tensor::empty(out_shape, a.dtype());
  const T* pa = a.data<T>() + base;
  T* po = out.data<T>();
  const Strides unused(out_shape.size(), 0);
  detail::strided_loop(out_shape, in_strides, unused,
                       [&](std::size_t i, std::size_t ia, std::size_t) { po[i] = pa[ia]; });
  record(out, op, {a}, [out_shape, in_strides, base](const Tensor& g, const Inputs& in) {
    const T* pg = g.data<T>();
    T* ga = in[0].grad_buffer<T>() + base;
    const Strides unused(out_shape.size(), 0);
    detail::strided_loop(out_shape, in_strides, unused,
                         [&](std::size_t i, std::size_t ia, std::size_t) { ga[ia] += pg[i]; });
  }, Reads::none());  // g alone, moved back
  return out;
}

}  // namespace

Tensor reshape(const Tensor& a, const Shape& shape) {
  detail::check_defined("reshape", a, "input");
  if (shape_numel(shape) != a.numel())
    detail::shape_error("reshape", "element counts differ", a.shape(), shape);
  Tensor out = a.detach();  // the same storage, seen through the new shape
  detail::NodeAccess::node(out)->shape = shape;
  record(out, "reshape", {a}, [](const Tensor& g, const Inputs& in) { pass_grad(in[0], g); });
  return out;
}

Tensor permute(const Tensor& a, const std::vector<int>& order) {
  detail::check_defined("permute", a, "input");
  const std::size_t rank = a.dim();
  if (order.size() != rank)
    detail::arg_error("permute", "order has " + std::to_string(order.size()) +
                                     " axes for a tensor of shape " + shape_str(a.shape()));
  std::vector<bool> used(rank, false);
  Shape out_shape(rank);
  Strides in_strides(rank);
  const Strides own = detail::contiguous_strides(a.shape());
  for (std::size_t i = 0; i < rank; ++i) {
    const std::size_t axis = detail::normalize_axis("permute", order[i], rank);
    if (used[axis]) detail::arg_error("permute", "axis " + std::to_string(order[i]) + " given twice");
    used[axis] = true;
    out_shape[i] = a.shape()[axis];
    in_strides[i] = own[axis];
  }
  return dispatch(a.dtype(), [&](auto tag) {
    return gather_strided<decltype(tag)>("permute", a, out_shape, in_strides, 0);
  });
}

Tensor transpose(const Tensor& a, int axis0, int axis1) {
  detail::check_defined("transpose", a, "input");
  std::vector<int> order(a.dim());
  std::iota(order.begin(), order.end(), 0);
  std::swap(order[detail::normalize_axis("transpose", axis0, a.dim())],
            order[detail::normalize_axis("transpose", axis1, a.dim())]);
  return permute(a, order);
}

Tensor slice(const Tensor& a, int axis, std::size_t start, std::size_t end) {
  detail::check_defined("slice", a, "input");
  const std::size_t ax = detail::normalize_axis("slice", axis, a.dim());
  if (start > end || end > a.shape()[ax])
    detail::arg_error("slice", "range [" + std::to_string(start) + ", " + std::to_string(end) +
                                   ") out of bounds for axis " + std::to_string(axis) +
                                   " of shape " + shape_str(a.shape()));
  Shape out_shape = a.shape();
  out_shape[ax] = end - start;
  const Strides own = detail::contiguous_strides(a.shape());
  return dispatch(a.dtype(), [&](auto tag) {
    return gather_strided<decltype(tag)>("slice", a, out_shape, own, start * own[ax]);
  });
}

Tensor concat(const std::vector<Tensor>& parts, int axis) {
  if (parts.empty()) detail::arg_error("concat", "no tensors given");
  for (const Tensor& p : parts) detail::check_defined("concat", p, "part");
  const Tensor& first = parts.front();
  const std::size_t ax = detail::normalize_axis("concat", axis, first.dim());
  Shape out_shape = first.shape();
  out_shape[ax] = 0;
  for (const Tensor& p : parts) {
    detail::check_same_dtype("concat", first, p);
    Shape expected = first.shape();
    expected[ax] = p.dim() == first.dim() ? p.shape()[ax] : 0;
    if (p.shape() != expected)
      detail::shape_error("concat", "shapes differ off the concat axis " + std::to_string(axis),
                          first.shape(), p.shape());
    out_shape[ax] += p.shape()[ax];
  }
  return dispatch(first.dtype(), [&](auto tag) {
    using T = decltype(tag);
    Tensor out = Tensor::empty(out_shape, first.dtype());
    const Strides out_strides = detail::contiguous_strides(out_shape);
    std::vector<std::size_t> bases;
    std::size_t offset = 0;
    for (const Tensor& p : parts) {
      bases.push_back(offset * out_strides[ax]);
      offset += p.shape()[ax];
      const T* pp = p.data<T>();
      T* po = out.data<T>() + bases.back();
      detail::strided_loop(p.shape(), detail::contiguous_strides(p.shape()), out_strides,
                           [&](std::size_t i, std::size_t, std::size_t io) { po[io] = pp[i]; });
    }
    record(out, "concat", parts, [bases, out_strides](const Tensor& g, const Inputs& parts) {
      for (std::size_t k = 0; k < parts.size(); ++k) {
        const Tensor& p = parts[k];
        if (!p.requires_grad()) continue;
        const T* pg = g.data<T>() + bases[k];
        T* gp = p.grad_buffer<T>();
        detail::strided_loop(p.shape(), detail::contiguous_strides(p.shape()), out_strides,
                             [&](std::size_t i, std::size_t, std::size_t io) { gp[i] += pg[io]; });
      }
    }, Reads::none());  // g alone, cut back into the parts
    return out;
  });
}

Tensor split_heads(const Tensor& a, std::size_t heads) {
  detail::check_defined("split_heads", a, "input");
  if (a.dim() != 3 || heads == 0 || a.shape()[2] % heads != 0)
    detail::arg_error("split_heads", "expects (B, T, H*D) with a last axis divisible by " +
                                         std::to_string(heads) + " heads, got " +
                                         shape_str(a.shape()));
  const Shape& s = a.shape();
  return permute(reshape(a, {s[0], s[1], heads, s[2] / heads}), {0, 2, 1, 3});  // (B,H,T,D)
}

Tensor merge_heads(const Tensor& a) {
  detail::check_defined("merge_heads", a, "input");
  if (a.dim() != 4)
    detail::arg_error("merge_heads", "expects (B, H, T, D), got " + shape_str(a.shape()));
  const Shape& s = a.shape();
  return reshape(permute(a, {0, 2, 1, 3}), {s[0], s[2], s[1] * s[3]});  // (B,T,H*D)
}

}  // namespace qkv::core
