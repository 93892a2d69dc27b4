// silu: value and hand-written backward (see silu.hpp).
#include "examples/custom_layer/silu.hpp"

#include <cmath>
#include <stdexcept>

namespace example {

using qkv::core::DType;
using qkv::core::Tensor;

namespace {

template <class T> T sigmoid(T x) { return T(1) / (T(1) + std::exp(-x)); }

template <class T> Tensor silu_impl(const Tensor& x) {
  Tensor y = Tensor::empty(x.shape(), x.dtype());
  const T* px = x.data<T>();
  T* py = y.data<T>();
  for (std::size_t i = 0; i < x.numel(); ++i) py[i] = px[i] * sigmoid(px[i]);

  // Runs during backward() with the gradient of y; accumulates (+=) into x's gradient,
  // because x may feed other ops too.
  qkv::core::record(y, "silu", {x}, [x](const Tensor& grad_y) {
    const T* px = x.data<T>();
    const T* pg = grad_y.data<T>();
    T* gx = x.grad_buffer<T>();
    for (std::size_t i = 0; i < x.numel(); ++i) {
      const T s = sigmoid(px[i]);
      gx[i] += pg[i] * s * (T(1) + px[i] * (T(1) - s));
    }
  });
  return y;
}

}  // namespace

Tensor silu(const Tensor& x) {
  if (!x.defined()) throw std::invalid_argument("silu: input is an undefined tensor");
  return x.dtype() == DType::f32 ? silu_impl<float>(x) : silu_impl<double>(x);
}

}  // namespace example
