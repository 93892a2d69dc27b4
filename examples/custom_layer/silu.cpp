// silu: value and hand-written backward (see silu.hpp), through the op-author API of
// core/op.hpp.
#include "silu.hpp"

#include <cmath>
#include <stdexcept>

#include "core/op.hpp"

namespace example {

using qkv::core::Inputs;
using qkv::core::Tensor;

namespace {

template <class T> T sigmoid(T x) { return T(1) / (T(1) + std::exp(-x)); }

template <class T> Tensor silu_impl(const Tensor& x) {
  Tensor y = Tensor::empty(x.shape(), x.dtype());
  const T* px = x.data<T>();
  T* py = y.data<T>();
  for (std::size_t i = 0; i < x.numel(); ++i) py[i] = px[i] * sigmoid(px[i]);

  // Runs during backward() with the gradient of y and the inputs listed here ({x}, so
  // in[0] is x). add_to_grad adds into x's gradient, because x may feed other ops too.
  qkv::core::record(y, "silu", {x}, [](const Tensor& grad_y, const Inputs& in) {
    const T* px = in[0].data<T>();
    const T* pg = grad_y.data<T>();
    qkv::core::add_to_grad<T>(in[0], [&](std::size_t i) {
      const T s = sigmoid(px[i]);
      return pg[i] * s * (T(1) + px[i] * (T(1) - s));
    });
  });
  return y;
}

}  // namespace

Tensor silu(const Tensor& x) {
  if (!x.defined()) throw std::invalid_argument("silu: input is an undefined tensor");
  return qkv::core::dispatch(x.dtype(), [&](auto tag) { return silu_impl<decltype(tag)>(x); });
}

}  // namespace example
