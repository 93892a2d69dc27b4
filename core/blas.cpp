// gemm over raw row-major buffers. A float product of at least kOneDnnMacs multiply-adds
// goes to oneDNN's dnnl_sgemm, whose AVX-512 kernels run nearly every linear-layer shape of
// a step 1.1-1.6x faster than OpenBLAS on this machine (bench/README.md, "which sgemm").
// Smaller products (attention's per-head ones, the tiny size's head) and every double
// product go to OpenBLAS through xtensor-blas's bundled cxxblas, whose small-matrix kernels
// win there. Neither copies on our side; our one buffer is the per-thread scratch of a tall
// Aᵀ B (gemm_via_transpose), which grows to its largest size once. (blas_threads.cpp
// includes <cblas.h> for the thread count; the two headers cannot share a file.) Under a
// ParallelScope a large product is split over the pool by rows or columns of C, each part
// one single-threaded gemm.
#include "core/blas.hpp"

#include <dnnl.h>

#include <algorithm>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>
#include <xtensor-blas/xblas.hpp>

#include "core/parallel.hpp"

// OpenMP's omp_set_num_threads, from the libgomp that Debian's oneDNN runs on (core links
// it by name). Declared here, not through <omp.h>: clang keeps its omp.h in another package
// (libomp-dev), which the fuzz build's `apt-get install clang` does not bring.
extern "C" void omp_set_num_threads(int threads);

namespace qkv::core {

namespace {

// Multiply-adds below which a product runs whole on one thread: a split costs a few
// microseconds of handing over, about what a gemm of this size takes.
constexpr std::size_t kSplitMacs = std::size_t{1} << 22;
// Parts are cut at multiples of this many rows or columns (OpenBLAS's register blocks).
constexpr std::size_t kSplitAlign = 16;
// Float products of at least this many multiply-adds run in oneDNN (measured per shape,
// bench/gemm_libraries.py: the tiny size's Linear products of 0.5-2M are 1.1-1.6x faster
// there; below, as the tiny head's 0.3M and attention's blocks, OpenBLAS is as fast or
// faster).
constexpr std::size_t kOneDnnMacs = std::size_t{1} << 19;

// oneDNN threads through OpenMP (Debian builds it on libgomp). Every call here is already
// one thread's part of the product, so each calling thread asks OpenMP for one thread once:
// the setting is per thread, and left alone oneDNN would start a team of nproc in every
// part and oversubscribe the cores.
void onednn_sgemm(bool trans_a, bool trans_b, std::size_t m, std::size_t n, std::size_t k,
                  float alpha, const float* a, std::size_t lda, const float* b, std::size_t ldb,
                  float beta, float* c, std::size_t ldc) {
  static thread_local const bool one_thread = (omp_set_num_threads(1), true);
  (void)one_thread;
  const auto dim = [](std::size_t extent) { return static_cast<dnnl_dim_t>(extent); };
  const dnnl_status_t status =
      dnnl_sgemm(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', dim(m), dim(n), dim(k), alpha, a,
                 dim(lda), b, dim(ldb), beta, c, dim(ldc));
  if (status != dnnl_success)
    throw std::runtime_error("gemm: oneDNN's dnnl_sgemm failed with status " +
                             std::to_string(static_cast<int>(status)));
}

template <class T>
void openblas_gemm(bool trans_a, bool trans_b, std::size_t m, std::size_t n, std::size_t k,
                   T alpha, const T* a, std::size_t lda, const T* b, std::size_t ldb, T beta,
                   T* c, std::size_t ldc) {
  using index = xt::blas_index_t;
  cxxblas::gemm<index>(cxxblas::StorageOrder::RowMajor,
                       trans_a ? cxxblas::Transpose::Trans : cxxblas::Transpose::NoTrans,
                       trans_b ? cxxblas::Transpose::Trans : cxxblas::Transpose::NoTrans,
                       static_cast<index>(m), static_cast<index>(n), static_cast<index>(k), alpha,
                       a, static_cast<index>(lda), b, static_cast<index>(ldb), beta, c,
                       static_cast<index>(ldc));
}

// The library is chosen by the whole product, before any split, so that every part of it
// runs the same kernels as the unsplit product does at one thread.
template <class T>
bool uses_onednn(std::size_t m, std::size_t n, std::size_t k) {
  return std::is_same_v<T, float> && m * n * k >= kOneDnnMacs;
}

template <class T>
void gemm_call(bool onednn, bool trans_a, bool trans_b, std::size_t m, std::size_t n,
               std::size_t k, T alpha, const T* a, std::size_t lda, const T* b, std::size_t ldb,
               T beta, T* c, std::size_t ldc) {
  if (m == 0 || n == 0) return;
  if constexpr (std::is_same_v<T, float>) {
    if (onednn)
      return onednn_sgemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  }
  openblas_gemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
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
void gemm_split(bool onednn, bool trans_a, bool trans_b, std::size_t m, std::size_t n,
                std::size_t k, T alpha, const T* a, std::size_t lda, const T* b, std::size_t ldb,
                T beta, T* c, std::size_t ldc) {
  const std::size_t threads = parallel_threads();
  const bool by_rows = m >= n;
  const std::size_t extent = by_rows ? m : n;
  if (threads <= 1 || m * n * k < kSplitMacs || extent < 2 * kSplitAlign) {
    gemm_call(onednn, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    return;
  }
  parallel_tasks(threads, [&](std::size_t part) {
    const std::size_t begin = split_point(extent, part, threads);
    const std::size_t end = split_point(extent, part + 1, threads);
    if (begin == end) return;
    if (by_rows) {  // rows of op(A): rows of A, or columns of a transposed A
      const T* a_part = trans_a ? a + begin : a + begin * lda;
      gemm_call(onednn, trans_a, trans_b, end - begin, n, k, alpha, a_part, lda, b, ldb, beta,
                c + begin * ldc, ldc);
    } else {  // columns of op(B): columns of B, or rows of a transposed B
      const T* b_part = trans_b ? b + begin * ldb : b + begin;
      gemm_call(onednn, trans_a, trans_b, m, end - begin, k, alpha, a, lda, b_part, ldb, beta,
                c + begin, ldc);
    }
  });
}

// oneDNN's Aᵀ B is slow when C is taller than it is wide. At a step's weight gradients
// (dW = dYᵀ X of a layer that widens, d_out > d_in, summed over the B*T token rows) it runs
// at 60-75 GFLOP/s, against about 100 for the same product transposed (bench/README.md,
// "which sgemm"). Such a product is computed as Cᵀ = Bᵀ A into a scratch of the calling
// thread's and then added into C transposed: one more pass over C, a megabyte at medium.
bool via_transpose(bool onednn, bool trans_a, bool trans_b, std::size_t m, std::size_t n) {
  return onednn && trans_a && !trans_b && m > n;
}

// C = alpha * Sᵀ + beta * C for S (n, m), in square tiles so that both are read along
// cache lines. beta = 0 overwrites C without reading it, as gemm does.
void add_transposed(std::size_t m, std::size_t n, float alpha, const float* s, float beta,
                    float* c, std::size_t ldc) {
  constexpr std::size_t tile = 32;
  for (std::size_t i0 = 0; i0 < m; i0 += tile)
    for (std::size_t j0 = 0; j0 < n; j0 += tile)
      for (std::size_t i = i0; i < std::min(i0 + tile, m); ++i)
        for (std::size_t j = j0; j < std::min(j0 + tile, n); ++j) {
          const float product = alpha * s[j * m + i];
          c[i * ldc + j] = beta == 0.0f ? product : product + beta * c[i * ldc + j];
        }
}

void gemm_via_transpose(std::size_t m, std::size_t n, std::size_t k, float alpha,
                        const float* a, std::size_t lda, const float* b, std::size_t ldb,
                        float beta, float* c, std::size_t ldc) {
  thread_local std::vector<float> scratch;  // grows to the largest such C once, then reused
  if (scratch.size() < m * n) scratch.resize(m * n);
  gemm_split(true, true, false, n, m, k, 1.0f, b, ldb, a, lda, 0.0f, scratch.data(), m);
  add_transposed(m, n, alpha, scratch.data(), beta, c, ldc);
}

template <class T>
void gemm_impl(bool trans_a, bool trans_b, std::size_t m, std::size_t n, std::size_t k, T alpha,
               const T* a, std::size_t lda, const T* b, std::size_t ldb, T beta, T* c,
               std::size_t ldc) {
  const bool onednn = uses_onednn<T>(m, n, k);
  if constexpr (std::is_same_v<T, float>) {
    if (via_transpose(onednn, trans_a, trans_b, m, n))
      return gemm_via_transpose(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  }
  gemm_split(onednn, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
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
