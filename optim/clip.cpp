// Gradient clipping by global norm and by value (see clip.hpp).
#include "optim/clip.hpp"

#include <algorithm>
#include <cmath>

#include "optim/option_check.hpp"

namespace qkv::optim {

using core::DType;
using core::NamedParameter;

namespace {

// In double, in SIMD lanes: one running sum would make every add wait for the one before,
// and at medium (3M gradients) this pass took as long as Adam's.
template <class T>
double sum_of_squares(const T* g, std::size_t n) {
  double sum = 0.0;
#pragma omp simd reduction(+ : sum)
  for (std::size_t i = 0; i < n; ++i) sum += static_cast<double>(g[i]) * static_cast<double>(g[i]);
  return sum;
}

template <class T>
void scale(T* g, std::size_t n, T factor) {
  for (std::size_t i = 0; i < n; ++i) g[i] *= factor;
}

template <class T>
void clamp(T* g, std::size_t n, T limit) {
  for (std::size_t i = 0; i < n; ++i) g[i] = std::clamp(g[i], -limit, limit);
}

bool has_grad(const NamedParameter& p) { return p.tensor.grad().defined(); }

}  // namespace

double grad_norm(const std::vector<NamedParameter>& params) {
  double sum = 0.0;
  for (const NamedParameter& p : params) {
    if (!has_grad(p)) continue;
    const std::size_t n = p.tensor.numel();
    sum += p.tensor.dtype() == DType::f32 ? sum_of_squares(p.tensor.grad_buffer<float>(), n)
                                          : sum_of_squares(p.tensor.grad_buffer<double>(), n);
  }
  return std::sqrt(sum);
}

double clip_grad_norm(const std::vector<NamedParameter>& params, double max_norm) {
  detail::check_option(max_norm > 0 && std::isfinite(max_norm), "clip_grad_norm", "max_norm",
                       max_norm, "a finite value > 0");
  const double norm = grad_norm(params);
  if (!std::isfinite(norm)) return norm;
  const double factor = max_norm / (norm + 1e-6);
  if (factor >= 1.0) return norm;
  for (const NamedParameter& p : params) {
    if (!has_grad(p)) continue;
    const std::size_t n = p.tensor.numel();
    if (p.tensor.dtype() == DType::f32) {
      scale(p.tensor.grad_buffer<float>(), n, static_cast<float>(factor));
    } else {
      scale(p.tensor.grad_buffer<double>(), n, factor);
    }
  }
  return norm;
}

void clip_grad_value(const std::vector<NamedParameter>& params, double clip_value) {
  detail::check_option(clip_value > 0 && std::isfinite(clip_value), "clip_grad_value",
                       "clip_value", clip_value, "a finite value > 0");
  for (const NamedParameter& p : params) {
    if (!has_grad(p)) continue;
    const std::size_t n = p.tensor.numel();
    if (p.tensor.dtype() == DType::f32) {
      clamp(p.tensor.grad_buffer<float>(), n, static_cast<float>(clip_value));
    } else {
      clamp(p.tensor.grad_buffer<double>(), n, clip_value);
    }
  }
}

}  // namespace qkv::optim
