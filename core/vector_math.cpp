// xsimd loops for vector_math.hpp: full SIMD batches, then a scalar tail with <cmath>.
#include "core/vector_math.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include <xsimd/xsimd.hpp>

namespace qkv::core::detail {

namespace {

template <class T, class Batch, class Scalar>
void apply(const T* x, T* y, std::size_t n, Batch batch_fn, Scalar scalar_fn) {
  using batch = xsimd::batch<T>;
  constexpr std::size_t width = batch::size;
  std::size_t i = 0;
  for (; i + width <= n; i += width) batch_fn(batch::load_unaligned(x + i)).store_unaligned(y + i);
  for (; i < n; ++i) y[i] = scalar_fn(x[i]);
}

template <class T> void exp_impl(const T* x, T* y, std::size_t n) {
  apply(x, y, n, [](const auto& b) { return xsimd::exp(b); }, [](T v) { return std::exp(v); });
}

template <class T> void erf_impl(const T* x, T* y, std::size_t n) {
  apply(x, y, n, [](const auto& b) { return xsimd::erf(b); }, [](T v) { return std::erf(v); });
}

template <class T> T row_max(const T* x, std::size_t n) {
  T top = -std::numeric_limits<T>::infinity();
  int nans = 0;
#pragma omp simd reduction(max : top) reduction(+ : nans)
  for (std::size_t j = 0; j < n; ++j) {
    top = x[j] > top ? x[j] : top;
    nans += x[j] != x[j];
  }
  // A NaN anywhere makes the maximum NaN (and so the row's results), never -inf.
  if (nans) return std::numeric_limits<T>::quiet_NaN();
  return top;
}

template <class T> void softmax_row_impl(const T* x, T* y, std::size_t n) {
  const T top = row_max(x, n);
  if (top == -std::numeric_limits<T>::infinity()) {
    std::fill(y, y + n, T(0));
    return;
  }
  for (std::size_t j = 0; j < n; ++j) y[j] = x[j] - top;
  exp_impl(y, y, n);
  T total = 0;
#pragma omp simd reduction(+ : total)
  for (std::size_t j = 0; j < n; ++j) total += y[j];
  const T inv = T(1) / total;
  for (std::size_t j = 0; j < n; ++j) y[j] *= inv;
}

template <class T> T log_sum_exp_impl(const T* x, T* scratch, std::size_t n) {
  const T top = row_max(x, n);
  if (top == -std::numeric_limits<T>::infinity()) return top;
  for (std::size_t j = 0; j < n; ++j) scratch[j] = x[j] - top;
  exp_impl(scratch, scratch, n);
  T total = 0;
#pragma omp simd reduction(+ : total)
  for (std::size_t j = 0; j < n; ++j) total += scratch[j];
  return top + std::log(total);
}

}  // namespace

void softmax_row(const float* x, float* y, std::size_t n) { softmax_row_impl(x, y, n); }
void softmax_row(const double* x, double* y, std::size_t n) { softmax_row_impl(x, y, n); }
float log_sum_exp_row(const float* x, float* scratch, std::size_t n) { return log_sum_exp_impl(x, scratch, n); }
double log_sum_exp_row(const double* x, double* scratch, std::size_t n) { return log_sum_exp_impl(x, scratch, n); }

void exp_array(const float* x, float* y, std::size_t n) { exp_impl(x, y, n); }
void exp_array(const double* x, double* y, std::size_t n) { exp_impl(x, y, n); }
void erf_array(const float* x, float* y, std::size_t n) { erf_impl(x, y, n); }
void erf_array(const double* x, double* y, std::size_t n) { erf_impl(x, y, n); }

}  // namespace qkv::core::detail
