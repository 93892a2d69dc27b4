// glibc's mallopt thresholds for a training loop (see allocator.hpp).
#include "core/allocator.hpp"

#include <mutex>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace qkv::core {

void tune_allocator() {
  static std::once_flag once;
  std::call_once(once, [] {
#if defined(__GLIBC__)
    // Allocations up to 256 MiB come from the heap, not from fresh mmap'ed pages (this
    // also turns off glibc's dynamic threshold, which stops growing at 32 MiB), and up
    // to 1 GiB of free memory at the heap's top stays with the process.
    mallopt(M_MMAP_THRESHOLD, 256 << 20);
    mallopt(M_TRIM_THRESHOLD, 1024 << 20);
#endif
  });
}

}  // namespace qkv::core
