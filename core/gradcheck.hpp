// gradcheck: compare autograd gradients with central finite differences, in double.
//
// The function's output y is reduced as sum(y ⊙ r) for a fixed random r (a plain sum
// would hide a broken softmax or layer-norm backward, whose gradient of a plain sum is
// zero). Each input element is perturbed in place by ±eps and the numeric derivative is
// compared with the analytic one; an element fails when
//   |numeric - analytic| > atol + rtol * max(|numeric|, |analytic|).
// Inputs must be float64 tensors; they are marked requires_grad here.
//
//   auto result = gradcheck("softmax", [](const std::vector<Tensor>& in) {
//     return softmax(in[0]);
//   }, {Tensor::randn({3, 5}, rng, DType::f64)});
//   CHECK_MESSAGE(result.ok, result.message);
//
// For large inputs (a whole model's parameters) set `directions` > 0: the check then
// compares directional derivatives along that many random directions over all inputs at
// once instead of perturbing every element. Because `f` may ignore its argument and read
// the same tensors from elsewhere (a model's parameters), perturbation happens in place.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/tensor.hpp"

namespace qkv::core {

struct GradcheckOptions {
  double eps = 1e-6;
  double atol = 1e-8;
  double rtol = 1e-6;
  std::uint64_t seed = 1234;  // for r (and the random directions)
  int directions = 0;         // 0: every element of every input
};

struct GradcheckResult {
  bool ok = true;
  double max_abs_error = 0.0;
  double max_rel_error = 0.0;
  std::size_t checked = 0;  // elements (or directions) compared
  std::string message;      // on failure: op, input, element, numeric, analytic
};

using GradcheckFn = std::function<Tensor(const std::vector<Tensor>&)>;

GradcheckResult gradcheck(const std::string& op, const GradcheckFn& f,
                          const std::vector<Tensor>& inputs, const GradcheckOptions& options = {});

}  // namespace qkv::core
