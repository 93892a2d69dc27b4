// Elementwise ops: binary ops with numpy broadcasting, ops with a scalar, and unary math.
// A binary op's backward accumulates straight into the inputs' gradients through the same
// broadcast strides, so summing over broadcast axes needs no separate reduction pass; an
// input whose gradient is the output's own (add's, sub's first) shares it (pass_grad).
#include <cmath>
#include <type_traits>

#include "core/kernel_util.hpp"
#include "core/ops.hpp"
#include "core/vector_math.hpp"

namespace qkv::core {

namespace {

// The gradient function of an input whose contribution is the output's gradient itself
// (add's inputs, sub's first): binary passes g on with pass_grad instead of computing it.
struct Unchanged {
  template <class T> T operator()(T, T, T g) const { return g; }
};

// The gradient of one input of the same shape as the output: g itself, or grad(a, b, g).
template <class T, class Grad>
void same_shape_grad(const Tensor& t, const Tensor& g, const T* pa, const T* pb, Grad grad) {
  if constexpr (std::is_same_v<Grad, Unchanged>) {
    pass_grad(t, g);
  } else {
    const T* pg = g.data<T>();
    add_to_grad<T>(t, [&](std::size_t i) { return grad(pa[i], pb[i], pg[i]); });
  }
}

// grad(a, b, g) at one broadcast position; Unchanged's is g, read without a's or b's values.
template <class T, class Grad>
T contribution(Grad grad, const T* pa, std::size_t ia, const T* pb, std::size_t ib, T g) {
  if constexpr (std::is_same_v<Grad, Unchanged>) return g;
  else return grad(pa[ia], pb[ib], g);
}

// value(a, b); grad_a(a, b, g) and grad_b(a, b, g) are the contributions to each input.
// When both are Unchanged (add), the backward reads no input's values: they are released
// as soon as nothing else holds them (a residual's branch, core/op.hpp Reads).
template <class T, class Value, class GradA, class GradB>
Tensor binary(const char* op, const Tensor& a, const Tensor& b, Value value, GradA grad_a,
              GradB grad_b) {
  const Shape out_shape = detail::broadcast_shape(op, a.shape(), b.shape());
  Tensor out = Tensor::empty(out_shape, a.dtype());
  const T* pa = a.data<T>();
  const T* pb = b.data<T>();
  T* po = out.data<T>();
  const bool same = a.shape() == b.shape();
  const std::size_t n = out.numel();
  const detail::Strides sa = detail::broadcast_strides(a.shape(), out_shape);
  const detail::Strides sb = detail::broadcast_strides(b.shape(), out_shape);
  if (same) {  // a residual add: split over the threads, each element as on one
    detail::parallel_blocks(n, [=](std::size_t begin, std::size_t end) {
      for (std::size_t i = begin; i < end; ++i) po[i] = value(pa[i], pb[i]);
    });
  } else {
    detail::strided_loop(out_shape, sa, sb, [&](std::size_t i, std::size_t ia, std::size_t ib) {
      po[i] = value(pa[ia], pb[ib]);
    });
  }
  constexpr bool reads = !std::is_same_v<GradA, Unchanged> || !std::is_same_v<GradB, Unchanged>;
  record(out, op, {a, b}, [sa, sb, out_shape, grad_a, grad_b](const Tensor& g, const Inputs& in) {
    const Tensor& a = in[0];
    const Tensor& b = in[1];
    const T* pa = reads ? a.data<T>() : nullptr;
    const T* pb = reads ? b.data<T>() : nullptr;
    const T* pg = g.data<T>();
    if (a.shape() == b.shape()) {
      if (a.requires_grad()) same_shape_grad<T>(a, g, pa, pb, grad_a);
      if (b.requires_grad()) same_shape_grad<T>(b, g, pa, pb, grad_b);
      return;
    }
    // Broadcast: an input of the output's shape whose gradient is g takes it as it is
    // (before the other's buffer is taken, core/op.hpp); the rest sum through the strides.
    const bool pass_a = std::is_same_v<GradA, Unchanged> && a.shape() == out_shape;
    const bool pass_b = std::is_same_v<GradB, Unchanged> && b.shape() == out_shape;
    if (pass_a && a.requires_grad()) pass_grad(a, g);
    if (pass_b && b.requires_grad()) pass_grad(b, g);
    T* ga = a.requires_grad() && !pass_a ? a.grad_buffer<T>() : nullptr;
    T* gb = b.requires_grad() && !pass_b ? b.grad_buffer<T>() : nullptr;
    if (!ga && !gb) return;
    detail::strided_loop(out_shape, sa, sb, [&](std::size_t i, std::size_t ia, std::size_t ib) {
      if (ga) ga[ia] += contribution(grad_a, pa, ia, pb, ib, pg[i]);
      if (gb) gb[ib] += contribution(grad_b, pa, ia, pb, ib, pg[i]);
    });
  }, reads ? Reads::all() : Reads::none());
  return out;
}

template <class F> Tensor binary_op(const char* op, const Tensor& a, const Tensor& b, F make) {
  detail::check_defined(op, a, "a");
  detail::check_defined(op, b, "b");
  detail::check_same_dtype(op, a, b);
  return dispatch(a.dtype(), [&](auto tag) { return make(tag); });
}

// value(x) and derivative(x, y) with y = value(x), for y = f(x) elementwise.
template <class T, class Value, class Derivative>
Tensor unary(const char* op, const Tensor& a, Value value, Derivative derivative) {
  Tensor out = Tensor::empty(a.shape(), a.dtype());
  const std::size_t n = a.numel();
  const T* pa = a.data<T>();
  T* po = out.data<T>();
  for (std::size_t i = 0; i < n; ++i) po[i] = value(pa[i]);
  // The backward reads the output's values through a detached alias: never the output
  // node itself, which would keep the graph alive through a cycle.
  record(out, op, {a}, [y = out.detach(), derivative](const Tensor& g, const Inputs& in) {
    const T* px = in[0].data<T>();
    const T* py = y.data<T>();
    const T* pg = g.data<T>();
    add_to_grad<T>(in[0], [&](std::size_t i) { return pg[i] * derivative(px[i], py[i]); });
  });
  return out;
}

template <class F> Tensor unary_op(const char* op, const Tensor& a, F make) {
  detail::check_defined(op, a, "input");
  return dispatch(a.dtype(), [&](auto tag) { return make(tag); });
}

}  // namespace

Tensor add(const Tensor& a, const Tensor& b) {
  return binary_op("add", a, b, [&](auto tag) {
    using T = decltype(tag);
    return binary<T>("add", a, b, [](T x, T y) { return x + y; }, Unchanged{}, Unchanged{});
  });
}

Tensor sub(const Tensor& a, const Tensor& b) {
  return binary_op("sub", a, b, [&](auto tag) {
    using T = decltype(tag);
    return binary<T>("sub", a, b, [](T x, T y) { return x - y; }, Unchanged{},
                     [](T, T, T g) { return -g; });
  });
}

Tensor mul(const Tensor& a, const Tensor& b) {
  return binary_op("mul", a, b, [&](auto tag) {
    using T = decltype(tag);
    return binary<T>("mul", a, b, [](T x, T y) { return x * y; },
                     [](T, T y, T g) { return g * y; }, [](T x, T, T g) { return g * x; });
  });
}

Tensor div(const Tensor& a, const Tensor& b) {
  return binary_op("div", a, b, [&](auto tag) {
    using T = decltype(tag);
    return binary<T>("div", a, b, [](T x, T y) { return x / y; },
                     [](T, T y, T g) { return g / y; },
                     [](T x, T y, T g) { return -g * x / (y * y); });
  });
}

Tensor add(const Tensor& a, double b) {
  return unary_op("add", a, [&](auto tag) {
    using T = decltype(tag);
    const T s = static_cast<T>(b);
    return unary<T>("add", a, [s](T x) { return x + s; }, [](T, T) { return T(1); });
  });
}

Tensor mul(const Tensor& a, double b) {
  return unary_op("mul", a, [&](auto tag) {
    using T = decltype(tag);
    const T s = static_cast<T>(b);
    return unary<T>("mul", a, [s](T x) { return x * s; }, [s](T, T) { return s; });
  });
}

Tensor neg(const Tensor& a) { return mul(a, -1.0); }

Tensor exp(const Tensor& a) {
  return unary_op("exp", a, [&](auto tag) {
    using T = decltype(tag);
    return unary<T>("exp", a, [](T x) { return std::exp(x); }, [](T, T y) { return y; });
  });
}

Tensor log(const Tensor& a) {
  return unary_op("log", a, [&](auto tag) {
    using T = decltype(tag);
    return unary<T>("log", a, [](T x) { return std::log(x); }, [](T x, T) { return T(1) / x; });
  });
}

Tensor sqrt(const Tensor& a) {
  return unary_op("sqrt", a, [&](auto tag) {
    using T = decltype(tag);
    return unary<T>("sqrt", a, [](T x) { return std::sqrt(x); },
                    [](T, T y) { return T(0.5) / y; });
  });
}

Tensor pow(const Tensor& a, double exponent) {
  return unary_op("pow", a, [&](auto tag) {
    using T = decltype(tag);
    const T p = static_cast<T>(exponent);
    return unary<T>("pow", a, [p](T x) { return std::pow(x, p); },
                    [p](T x, T) { return p * std::pow(x, p - T(1)); });
  });
}

Tensor tanh(const Tensor& a) {
  return unary_op("tanh", a, [&](auto tag) {
    using T = decltype(tag);
    return unary<T>("tanh", a, [](T x) { return std::tanh(x); },
                    [](T, T y) { return T(1) - y * y; });
  });
}

Tensor relu(const Tensor& a) {
  return unary_op("relu", a, [&](auto tag) {
    using T = decltype(tag);
    return unary<T>("relu", a, [](T x) { return x > T(0) ? x : T(0); },
                    [](T x, T) { return x > T(0) ? T(1) : T(0); });
  });
}

Tensor gelu(const Tensor& a) {
  return unary_op("gelu", a, [&](auto tag) {
    using T = decltype(tag);
    // The derivative is formed with the value and kept for backward, which is then one
    // multiply per element. slope is a Tensor for its uninitialized storage.
    const std::size_t n = a.numel();
    const T* x = a.data<T>();
    const bool grad = needs_grad({&a});
    Tensor out = Tensor::empty(a.shape(), a.dtype());
    T* y = out.data<T>();
    Tensor slope = grad ? Tensor::empty(a.shape(), a.dtype()) : Tensor();
    T* s = grad ? slope.data<T>() : nullptr;
    // Blocks of whole SIMD widths over the threads: each element is computed as on one
    // thread, so the result does not depend on the thread count.
    detail::parallel_blocks(n, [=](std::size_t begin, std::size_t end) {
      detail::gelu_array(x + begin, y + begin, s ? s + begin : nullptr, end - begin);
    });
    if (!grad) return out;
    record(out, "gelu", {a}, [slope](const Tensor& g, const Inputs& in) {
      const T* pg = g.data<T>();
      const T* ps = slope.data<T>();
      const GradTarget<T> ga = grad_for_write<T>(in[0]);
      detail::parallel_blocks(slope.numel(), [=](std::size_t begin, std::size_t end) {
        const T* gb = pg + begin;
        const T* sb = ps + begin;
        store_grad(ga.data + begin, ga.fresh, end - begin, [=](std::size_t i) { return gb[i] * sb[i]; });
      });
    }, Reads::none());  // the slope is all it reads: the input's values may go
    return out;
  });
}

}  // namespace qkv::core
