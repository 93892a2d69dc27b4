// gemm over raw row-major buffers through xtensor-blas's bundled cxxblas, which calls
// OpenBLAS's cblas_?gemm directly: no copies, no allocation. (blas_threads.cpp includes
// <cblas.h> for the thread count; the two headers cannot share a file.) Under a
// ParallelScope a large product is split over the pool by rows or columns of C, each part
// one single-threaded gemm (OpenBLAS itself then runs on one thread).
#include "core/blas.hpp"

#include <xtensor-blas/xblas.hpp>

#include "core/parallel.hpp"

namespace qkv::core {

namespace {

// Multiply-adds below which a product runs whole on one thread: a split costs a few
// microseconds of handing over, about what a gemm of this size takes.
constexpr std::size_t kSplitMacs = std::size_t{1} << 22;
// Parts are cut at multiples of this many rows or columns (OpenBLAS's register blocks).
constexpr std::size_t kSplitAlign = 16;

template <class T>
void gemm_call(bool trans_a, bool trans_b, std::size_t m, std::size_t n, std::size_t k, T alpha,
               const T* a, std::size_t lda, const T* b, std::size_t ldb, T beta, T* c,
               std::size_t ldc) {
  if (m == 0 || n == 0) return;
  using index = xt::blas_index_t;
  cxxblas::gemm<index>(cxxblas::StorageOrder::RowMajor,
                       trans_a ? cxxblas::Transpose::Trans : cxxblas::Transpose::NoTrans,
                       trans_b ? cxxblas::Transpose::Trans : cxxblas::Transpose::NoTrans,
                       static_cast<index>(m), static_cast<index>(n), static_cast<index>(k), alpha,
                       a, static_cast<index>(lda), b, static_cast<index>(ldb), beta, c,
                       static_cast<index>(ldc));
}

// The part [begin, end) of the axis being split, at a multiple of kSplitAlign.
std::size_t split_point(std::size_t extent, std::size_t part, std::size_t parts) {
  if (part == parts) return extent;
  const std::size_t at = extent * part / parts;
  return at - at % kSplitAlign;
}

// C's rows (when m >= n) or columns split into one part per thread. Each element of C is
// the same k-sum as unsplit; the parts depend only on the shape and the thread count.
template <class T>
void gemm_impl(bool trans_a, bool trans_b, std::size_t m, std::size_t n, std::size_t k, T alpha,
               const T* a, std::size_t lda, const T* b, std::size_t ldb, T beta, T* c,
               std::size_t ldc) {
  const std::size_t threads = parallel_threads();
  const bool by_rows = m >= n;
  const std::size_t extent = by_rows ? m : n;
  if (threads <= 1 || m * n * k < kSplitMacs || extent < 2 * kSplitAlign) {
    gemm_call(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    return;
  }
  parallel_tasks(threads, [&](std::size_t part) {
    const std::size_t begin = split_point(extent, part, threads);
    const std::size_t end = split_point(extent, part + 1, threads);
    if (begin == end) return;
    if (by_rows) {  // rows of op(A): rows of A, or columns of a transposed A
      const T* a_part = trans_a ? a + begin : a + begin * lda;
      gemm_call(trans_a, trans_b, end - begin, n, k, alpha, a_part, lda, b, ldb, beta,
                c + begin * ldc, ldc);
    } else {  // columns of op(B): columns of B, or rows of a transposed B
      const T* b_part = trans_b ? b + begin * ldb : b + begin;
      gemm_call(trans_a, trans_b, m, end - begin, k, alpha, a, lda, b_part, ldb, beta,
                c + begin, ldc);
    }
  });
}

}  // namespace

void gemm(bool trans_a, bool trans_b, std::size_t m, std::size_t n, std::size_t k, float alpha,
          const float* a, std::size_t lda, const float* b, std::size_t ldb, float beta, float* c,
          std::size_t ldc) {
  gemm_impl(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

void gemm(bool trans_a, bool trans_b, std::size_t m, std::size_t n, std::size_t k, double alpha,
          const double* a, std::size_t lda, const double* b, std::size_t ldb, double beta,
          double* c, std::size_t ldc) {
  gemm_impl(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

}  // namespace qkv::core
