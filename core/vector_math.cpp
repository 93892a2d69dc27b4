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

// erf in float as a rational function on [-4, 4] (erf is ±1 in float beyond), with the
// minimax coefficients of Eigen's generic_fast_erf_float: within 4.2e-7 of the true value
// (a few ulp), and about 4x cheaper than xsimd::erf, which evaluates every branch of its
// piecewise form (an exp among them) on every lane. GELU's erf was the largest kernel of a
// training step. T is a float or a batch of floats, so the tail matches the body exactly.
template <class T> T erf_rational(T x) {
  x = xsimd::clip(x, T(-4.f), T(4.f));
  const T x2 = x * x;
  T p = T(-2.72614225801306e-10f);
  p = xsimd::fma(p, x2, T(2.77068142495902e-08f));
  p = xsimd::fma(p, x2, T(-2.10102402082508e-06f));
  p = xsimd::fma(p, x2, T(-5.69250639462346e-05f));
  p = xsimd::fma(p, x2, T(-7.34990630326855e-04f));
  p = xsimd::fma(p, x2, T(-2.95459980854025e-03f));
  p = xsimd::fma(p, x2, T(-1.60960333262415e-02f));
  T q = T(-1.45660718464996e-05f);
  q = xsimd::fma(q, x2, T(-2.13374055278905e-04f));
  q = xsimd::fma(q, x2, T(-1.68282697438203e-03f));
  q = xsimd::fma(q, x2, T(-7.37332916720468e-03f));
  q = xsimd::fma(q, x2, T(-1.42647390514189e-02f));
  return x * p / q;
}

void erf_impl(const float* x, float* y, std::size_t n) {
  apply(x, y, n, [](const auto& b) { return erf_rational(b); }, [](float v) { return erf_rational(v); });
}

// Double precision serves gradient checks: accuracy over speed.
void erf_impl(const double* x, double* y, std::size_t n) {
  apply(x, y, n, [](const auto& b) { return xsimd::erf(b); }, [](double v) { return std::erf(v); });
}

float erf_of(float v) { return erf_rational(v); }
double erf_of(double v) { return std::erf(v); }
xsimd::batch<float> erf_of(const xsimd::batch<float>& b) { return erf_rational(b); }
xsimd::batch<double> erf_of(const xsimd::batch<double>& b) { return xsimd::erf(b); }

// v, through an empty asm that GCC must assume changes it, so that a product in v is
// rounded before it is used: GCC contracts a product into a later add (an fma) even across
// xsimd's intrinsics, which changed GELU's slope in its last bit against the separate
// passes this replaced (−x²/2 into exp's range reduction, x φ(x) into the final sum).
template <class T> T rounded(T v) { return v; }  // a scalar reaches std::exp, opaque anyway
template <class T> xsimd::batch<T> rounded(xsimd::batch<T> v) {
  typename xsimd::batch<T>::register_type r = v;
  __asm__("" : "+v"(r));
  return xsimd::batch<T>(r);
}

// GELU of one value or batch, V = T or xsimd::batch<T>; exp_fn is exp of a V. The slope is
// ½ (1 + erf) + (x / √(2π)) e^(−x²/2): ½ (1 + erf) is exact, so the explicit fma gives the
// same bits as the separate passes this replaced, whose loops GCC compiled to that fma.
template <class T, class V, class Exp>
void gelu_value(const V& x, V& y, V* slope, Exp exp_fn) {
  const V one_plus_erf = V(T(1)) + erf_of(x * V(T(0.70710678118654752440)));
  if (slope) {
    const V density = exp_fn(rounded<T>(V(T(-0.5)) * x * x));
    *slope = xsimd::fma(one_plus_erf, V(T(0.5)), rounded<T>(x * V(T(0.39894228040143267794)) * density));
  }
  y = x * V(T(0.5)) * one_plus_erf;
}

template <class T> void gelu_impl(const T* x, T* y, T* slope, std::size_t n) {
  using batch = xsimd::batch<T>;
  constexpr std::size_t width = batch::size;
  const auto exp_batch = [](const batch& b) { return xsimd::exp(b); };
  std::size_t i = 0;
  for (; i + width <= n; i += width) {
    batch out, d;
    gelu_value<T>(batch::load_unaligned(x + i), out, slope ? &d : nullptr, exp_batch);
    out.store_unaligned(y + i);
    if (slope) d.store_unaligned(slope + i);
  }
  for (; i < n; ++i) gelu_value<T>(x[i], y[i], slope ? slope + i : nullptr, [](T v) { return std::exp(v); });
}

// exp(x[i] - shift) into y: the shift and exp in one pass, with apply's batches and tail.
template <class T> void exp_shifted(const T* x, T shift, T* y, std::size_t n) {
  using batch = xsimd::batch<T>;
  const batch shift_batch(shift);
  apply(x, y, n, [&](const batch& b) { return xsimd::exp(b - shift_batch); },
        [shift](T v) { return std::exp(v - shift); });
}

// The row's maximum over its non-NaN entries (-inf if there are none). A NaN anywhere
// makes softmax and log Σ exp NaN anyway (it reaches the row's sum), except in a row whose
// other entries are all -inf: the callers check for NaN there, off the common path.
template <class T> T row_max(const T* x, std::size_t n) {
  T top = -std::numeric_limits<T>::infinity();
#pragma omp simd reduction(max : top)
  for (std::size_t j = 0; j < n; ++j) top = x[j] > top ? x[j] : top;
  return top;
}

template <class T> bool has_nan(const T* x, std::size_t n) {
  return std::any_of(x, x + n, [](T v) { return v != v; });
}

template <class T> void softmax_row_impl(const T* x, T* y, std::size_t n) {
  const T top = row_max(x, n);
  if (top == -std::numeric_limits<T>::infinity()) {
    std::fill(y, y + n, has_nan(x, n) ? std::numeric_limits<T>::quiet_NaN() : T(0));
    return;
  }
  exp_shifted(x, top, y, n);
  T total = 0;
#pragma omp simd reduction(+ : total)
  for (std::size_t j = 0; j < n; ++j) total += y[j];
  const T inv = T(1) / total;
  for (std::size_t j = 0; j < n; ++j) y[j] *= inv;
}

template <class T> T log_sum_exp_impl(const T* x, T* scratch, std::size_t n) {
  const T top = row_max(x, n);
  if (top == -std::numeric_limits<T>::infinity())
    return has_nan(x, n) ? std::numeric_limits<T>::quiet_NaN() : top;
  exp_shifted(x, top, scratch, n);
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
void gelu_array(const float* x, float* y, float* slope, std::size_t n) { gelu_impl(x, y, slope, n); }
void gelu_array(const double* x, double* y, double* slope, std::size_t n) { gelu_impl(x, y, slope, n); }

}  // namespace qkv::core::detail
