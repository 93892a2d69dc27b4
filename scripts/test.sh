#!/usr/bin/env bash
# Build and run the whole test suite (installing the Debian packages if missing).
#   scripts/test.sh              release build
#   scripts/test.sh --sanitize   AddressSanitizer + UndefinedBehaviorSanitizer build, so
#                                leaks and undefined behaviour fail the run
#   scripts/test.sh --mpi        the build with -DQKV_MPI=ON (build-mpi/), and only the MPI
#                                tests (tests/mpi, on 2 ranks): the rest is the release
#                                build's, compiled alike (ccache serves it)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
flavour=release
if [[ "${1:-}" == --sanitize ]]; then
  flavour=sanitize
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
fi
if [[ "${1:-}" == --mpi ]]; then
  flavour=mpi
fi
qkv_install_packages "$flavour"
if [[ "$flavour" == mpi ]]; then
  qkv_build mpi qkv qkv_mpi_tests qkv_mpi_failing_rank
  # One test at a time: each runs 2 ranks, which is the machine's cores.
  ctest --test-dir "$QKV_BUILD_DIR" --output-on-failure -R '^mpi\.'
  exit
fi
qkv_build "$flavour" all  # the test binaries, the examples and the qkv command
ctest --test-dir "$QKV_BUILD_DIR" --output-on-failure -j"$(nproc)"
