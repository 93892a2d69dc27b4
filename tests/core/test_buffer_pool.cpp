// The per-thread pools behind tensor values and graph bookkeeping (core/buffer_pool.hpp):
// a released block serves the next request of its class, a block released on another
// thread joins that thread's pool (ASan checks that nothing is freed twice or leaked when
// the thread ends), and shared_ptrs made with PoolAllocator come from the small blocks.
#include <doctest/doctest.h>

#include <cstdint>
#include <memory>
#include <thread>

#include "core/buffer_pool.hpp"

using namespace qkv::core;

TEST_CASE("buffer pool: a released value buffer serves the next request of its class") {
  void* first = pool_allocate(1000);
  REQUIRE(first != nullptr);
  CHECK(reinterpret_cast<std::uintptr_t>(first) % 64 == 0);
  pool_release(first, 1000);
  const BufferPoolStats before = buffer_pool_stats();
  void* again = pool_allocate(1000);
  CHECK(again == first);
  CHECK(buffer_pool_stats().reused == before.reused + 1);
  CHECK(buffer_pool_stats().fresh == before.fresh);
  pool_release(again, 1000);
  CHECK(pool_allocate(0) == nullptr);
}

TEST_CASE("buffer pool: a released small block serves the next request of its 16-byte class") {
  void* first = small_allocate(40);
  small_release(first, 40);
  const BufferPoolStats before = buffer_pool_stats();
  void* again = small_allocate(48);  // 33..48 bytes are one class
  CHECK(again == first);
  CHECK(buffer_pool_stats().small_fresh == before.small_fresh);
  CHECK(buffer_pool_stats().small_cached_bytes == before.small_cached_bytes - 48);
  small_release(again, 48);
  void* large = small_allocate(4096);  // above 1 KiB: the heap's, not kept
  small_release(large, 4096);
  CHECK(buffer_pool_stats().small_cached_bytes == before.small_cached_bytes);
}

TEST_CASE("buffer pool: allocate_shared with PoolAllocator gives its block back to the pool") {
  auto value = std::allocate_shared<std::uint64_t>(PoolAllocator<std::uint64_t>(), 7);
  const std::size_t cached = buffer_pool_stats().small_cached_bytes;
  value.reset();
  CHECK(buffer_pool_stats().small_cached_bytes > cached);
}

TEST_CASE("buffer pool: blocks released on another thread join that thread's pool") {
  void* buffer = pool_allocate(4096);
  void* block = small_allocate(64);
  std::size_t cached = 0, small_cached = 0;
  std::thread other([&] {
    pool_release(buffer, 4096);
    small_release(block, 64);
    cached = buffer_pool_stats().cached_bytes;
    small_cached = buffer_pool_stats().small_cached_bytes;
  });  // its pools, holding both, are freed when it ends
  other.join();
  CHECK(cached == 4096);
  CHECK(small_cached == 64);
}
