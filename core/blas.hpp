// The one path to matrix products: C = alpha * op(A) op(B) + beta * C on raw row-major
// buffers with leading dimensions, for float and double. It reaches OpenBLAS through
// xtensor-blas's cxxblas::gemm with no copy and no allocation, so callers can multiply
// strided slices in place (a head of a (B, T, H*D) tensor: lda = H*D) and accumulate
// gradients with beta = 1.
//
//   gemm(false, true, M, N, K, 1.0f, a, K, b, K, 0.0f, c, N);  // C = A Bᵀ
//
// This header is free of BLAS headers: <cblas.h> and xtensor-blas clash in one
// translation unit, so each lives in its own .cpp (blas.cpp, blas_threads.cpp).
#pragma once

#include <cstddef>

namespace qkv::core {

void gemm(bool trans_a, bool trans_b, std::size_t m, std::size_t n, std::size_t k, float alpha,
          const float* a, std::size_t lda, const float* b, std::size_t ldb, float beta, float* c,
          std::size_t ldc);
void gemm(bool trans_a, bool trans_b, std::size_t m, std::size_t n, std::size_t k, double alpha,
          const double* a, std::size_t lda, const double* b, std::size_t ldb, double beta,
          double* c, std::size_t ldc);

// OpenBLAS's thread count, set once (from the config's train.threads; tests use 1).
void set_blas_threads(int threads);

}  // namespace qkv::core
