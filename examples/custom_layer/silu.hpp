// silu: a custom differentiable op, written the way core's own ops are (core/op.hpp):
// compute the value over raw pointers, then core::record the backward that turns the
// output's gradient into the input's. It is the example of "write your own op"
// (README.md, step 1).
//
//   silu(x) = x · sigmoid(x),   d silu / dx = s · (1 + x · (1 - s))  with s = sigmoid(x)
//
// The backward reads x from the inputs that record() hands back and recomputes s
// (cheaper than storing it); it captures nothing, and never the output tensor, which
// would make a reference cycle. Checked with core::gradcheck in test_custom_layer.cpp.
//
//   Tensor y = example::silu(x);   // any shape, float32 or float64
#pragma once

#include "core/tensor.hpp"

namespace example {

qkv::core::Tensor silu(const qkv::core::Tensor& x);

}  // namespace example
