// The doctest runner for every test in tests/. BLAS runs on one thread in tests, so
// results do not depend on the machine's core count.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include "core/blas.hpp"

int main(int argc, char** argv) {
  qkv::core::set_blas_threads(1);
  doctest::Context context(argc, argv);
  return context.run();
}
