// OpenBLAS's thread control. Kept apart from blas.cpp: <cblas.h> and xtensor-blas's
// headers declare the CBLAS API differently and cannot meet in one translation unit.
#include <cblas.h>

#include <stdexcept>
#include <string>

#include "core/blas.hpp"

namespace qkv::core {

void set_blas_threads(int threads) {
  if (threads < 1)
    throw std::invalid_argument("set_blas_threads: threads must be at least 1, got " +
                                std::to_string(threads));
  openblas_set_num_threads(threads);
}

}  // namespace qkv::core
