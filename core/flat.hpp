// One contiguous buffer for the values, or the gradients, of many tensors (a model's
// parameters): each tensor becomes a view of its part, in order, so that one loop (a fused
// optimizer step) or one message (an allreduce of the gradients) covers them all.
//
//   std::vector<Tensor> params = ...;          // leaves of one dtype
//   Tensor values = pack_values(params);       // (N): params[i] is now values[o_i, o_i + n_i)
//   Tensor grads = pack_gradients(params);     // (N): where backward puts their gradients
//   loss.backward();                           // fills grads' parts of the parameters it reaches
//
// The tensors keep their identity: every handle to a parameter (a layer's) sees the
// moved values. A gradient is still allocated only when backward first reaches the
// parameter after zero_grad() (it is then its part of the flat buffer, written with = as
// a fresh buffer is), so a part whose parameter backward did not reach holds stale values;
// a consumer of the whole span must know that every parameter was reached. convert_() or
// another pack gives a tensor storage of its own again, outside this buffer.
#pragma once

#include <vector>

#include "core/tensor.hpp"

namespace qkv::core {

// Copies the values of `tensors` (defined leaves of one dtype, each listed once) into one
// new buffer, in order, makes each a view of its part, and returns the whole as a 1-D
// tensor without history.
Tensor pack_values(const std::vector<Tensor>& tensors);

// Makes a new buffer, laid out like pack_values', the home of the tensors' gradients:
// a gradient defined now is copied there, and later ones are allocated there. Returns it.
Tensor pack_gradients(const std::vector<Tensor>& tensors);

// A view of `count` elements of `flat` from `offset`, as a 1-D tensor without history.
Tensor flat_part(const Tensor& flat, std::size_t offset, std::size_t count);

}  // namespace qkv::core
