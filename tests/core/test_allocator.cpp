// tune_allocator: after it, a large buffer comes from the heap and is kept for reuse
// instead of being mmap'ed fresh (and page-faulted again) on every allocation.
#include <doctest/doctest.h>

#include <malloc.h>

#include <cstdlib>

#include "core/allocator.hpp"

TEST_CASE("tune_allocator: a 64 MiB buffer is served from the heap, not mmap'ed") {
  qkv::core::tune_allocator();
  qkv::core::tune_allocator();  // idempotent: a second call changes nothing
  // 64 MiB is above glibc's default mmap threshold even after its dynamic growth (32 MiB
  // at most), so without the tuning this allocation would be a fresh mapping.
  const std::size_t bytes = std::size_t{64} << 20;
  const std::size_t mapped_before = mallinfo2().hblks;
  char* volatile buffer = static_cast<char*>(std::malloc(bytes));
  REQUIRE(buffer != nullptr);
  buffer[bytes - 1] = 1;  // used, so that the allocation is not optimized away
  const std::size_t mapped_during = mallinfo2().hblks;
  std::free(buffer);
  CHECK(mapped_during == mapped_before);
}
