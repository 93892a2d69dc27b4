// Shared by the core and layer tests: random float64 inputs and a CHECK on gradcheck's
// verdict that prints its message (op, input, element, numeric, analytic) on failure.
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <functional>
#include <stdexcept>

#include "core/gradcheck.hpp"
#include "core/ops.hpp"
#include "core/random.hpp"

namespace qkv::test {

inline core::Tensor rand64(const core::Shape& shape, std::uint64_t seed, double lo = -1.0,
                           double hi = 1.0) {
  core::Rng rng(seed);
  return core::Tensor::uniform(shape, lo, hi, rng, core::DType::f64);
}

inline void check_gradients(const std::string& op, const core::GradcheckFn& f,
                            const std::vector<core::Tensor>& inputs,
                            const core::GradcheckOptions& options = {}) {
  const core::GradcheckResult result = core::gradcheck(op, f, inputs, options);
  CHECK_MESSAGE(result.ok, result.message);
  CHECK(result.checked > 0);
  CHECK(result.max_rel_error < std::max(options.rtol, 1e-6));
}

}  // namespace qkv::test
