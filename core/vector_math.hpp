// Vectorized exp, erf and GELU (with its derivative, in one pass) over arrays, for the
// fused kernels' hot loops (softmax rows, GELU). Internal to core/. They run on xsimd, the
// SIMD library xtensor is built on: exp (float and double) and erf (double) are xsimd's,
// accurate to a few ulp; erf in float is a rational approximation within 4.2e-7
// (tests/core/test_vector_math checks all against <cmath>). libm's scalar erff was half of
// a training step's time. exp(-inf) is exactly 0, so masked softmax entries stay exact zeros.
#pragma once

#include <cstddef>

namespace qkv::core::detail {

// y[i] = exp(x[i]); x and y may be the same array.
void exp_array(const float* x, float* y, std::size_t n);
void exp_array(const double* x, double* y, std::size_t n);

// y[i] = erf(x[i]); x and y may be the same array.
void erf_array(const float* x, float* y, std::size_t n);
void erf_array(const double* x, double* y, std::size_t n);

// GELU, y[i] = x Φ(x) with Φ(x) = ½ (1 + erf(x/√2)), and, unless slope is null, its
// derivative slope[i] = Φ(x) + x φ(x) with φ(x) = exp(−x²/2) / √(2π), in one pass.
void gelu_array(const float* x, float* y, float* slope, std::size_t n);
void gelu_array(const double* x, double* y, double* slope, std::size_t n);

// Stable softmax of one row: y = exp(x - max) / Σ. A row that is all -inf (every entry
// masked) gives zeros. x and y may be the same array.
void softmax_row(const float* x, float* y, std::size_t n);
void softmax_row(const double* x, double* y, std::size_t n);

// Stable log Σ exp(x) of one row (-inf for an all -inf row); scratch holds n values.
float log_sum_exp_row(const float* x, float* scratch, std::size_t n);
double log_sum_exp_row(const double* x, double* scratch, std::size_t n);

}  // namespace qkv::core::detail
