// Gradient clipping, as torch.nn.utils.clip_grad_norm_ / clip_grad_value_.
//
// clip_grad_norm treats the gradients of all parameters as one vector: if its L2 norm
// exceeds max_norm, every gradient is scaled by max_norm / (norm + 1e-6) (PyTorch's
// factor; the 1e-6 guards a zero norm). The norm is accumulated in double. It returns the
// norm before clipping, for logging; a non-finite norm is returned without scaling
// anything, so that the caller can stop the run on it. Parameters without a gradient are
// left out.
//
//   loss.backward();
//   double norm = clip_grad_norm(params, 1.0);
//   if (!std::isfinite(norm)) { /* stop: the loss diverged */ }
//   optimizer.step();
#pragma once

#include <vector>

#include "core/parameter.hpp"

namespace qkv::optim {

// The global L2 norm of the gradients (0 if none is defined).
double grad_norm(const std::vector<core::NamedParameter>& params);

// max_norm > 0, else std::invalid_argument. Returns the pre-clip global norm.
double clip_grad_norm(const std::vector<core::NamedParameter>& params, double max_norm);

// Clamps every gradient element into [-clip_value, clip_value]; clip_value > 0.
void clip_grad_value(const std::vector<core::NamedParameter>& params, double clip_value);

}  // namespace qkv::optim
