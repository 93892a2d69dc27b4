#!/usr/bin/env bash
# Build and run the whole test suite (installing the Debian packages if missing).
#   scripts/test.sh              release build
#   scripts/test.sh --sanitize   AddressSanitizer + UndefinedBehaviorSanitizer build, so
#                                leaks and undefined behaviour fail the run
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
flavour=release
if [[ "${1:-}" == --sanitize ]]; then
  flavour=sanitize
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
fi
qkv_install_packages
qkv_build "$flavour" all  # the test binaries, the examples and the qkv command
ctest --test-dir "$QKV_BUILD_DIR" --output-on-failure -j"$(nproc)"
