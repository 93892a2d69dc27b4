// The per-thread pools behind tensor values and graph bookkeeping (core/buffer_pool.hpp):
// a released block serves the next request of its class, a smaller request takes a
// larger free buffer (up to 1/8 larger) that then goes back to its own size, pool_trim
// frees the free buffers, a block released on another thread joins that thread's pool
// (ASan checks that nothing is freed twice or leaked when the thread ends), and
// shared_ptrs made with PoolAllocator come from the small blocks.
#include <doctest/doctest.h>

#include <cstdint>
#include <memory>
#include <thread>
#include <utility>

#include "core/buffer_pool.hpp"

using namespace qkv::core;

namespace {

// Runs f on a new thread, whose pools start empty whatever earlier tests left in this one's
// (doctest's CHECKs may run there; a REQUIRE would end the process).
template <class F> void on_fresh_thread(F&& f) {
  std::thread thread(std::forward<F>(f));
  thread.join();
}

}  // namespace

TEST_CASE("buffer pool: a released value buffer serves the next request of its class") {
  on_fresh_thread([] {
    void* first = pool_allocate(1000);
    CHECK(first != nullptr);
    CHECK(reinterpret_cast<std::uintptr_t>(first) % 64 == 0);
    pool_release(first);
    const BufferPoolStats before = buffer_pool_stats();
    void* again = pool_allocate(1000);
    CHECK(again == first);
    CHECK(buffer_pool_stats().reused == before.reused + 1);
    CHECK(buffer_pool_stats().fresh == before.fresh);
    pool_release(again);
    CHECK(pool_allocate(0) == nullptr);
  });
}

TEST_CASE("buffer pool: a request takes a free buffer up to 1/8 larger, which goes back to its size") {
  on_fresh_thread([] {
    void* near = pool_allocate(9 * 1024);
    pool_release(near);
    void* smaller = pool_allocate(8 * 1024);  // no free 8 KiB buffer: the 9 KiB one serves
    CHECK(smaller == near);
    pool_release(smaller);
    CHECK(pool_allocate(9 * 1024) == near);  // filed under 9 KiB again, not 8 KiB
    pool_release(near);
    // A buffer 4 times larger is kept for a request of its own size: had the small request
    // taken it, that request would make a fresh large one.
    void* large = pool_allocate(32 * 1024);
    pool_release(large);
    const BufferPoolStats before = buffer_pool_stats();
    void* small = pool_allocate(8 * 1024);
    CHECK(small == near);
    void* other_small = pool_allocate(8 * 1024);
    CHECK(other_small != large);
    CHECK(buffer_pool_stats().fresh == before.fresh + 1);
    CHECK(pool_allocate(32 * 1024) == large);
    pool_release(large);
    pool_release(small);
    pool_release(other_small);
  });
}

TEST_CASE("buffer pool: pool_trim frees the free value buffers and keeps those in use") {
  on_fresh_thread([] {
    void* kept = pool_allocate(4096);
    void* freed = pool_allocate(8192);
    pool_release(freed);
    CHECK(buffer_pool_stats().cached_bytes == 8192);
    pool_trim();
    CHECK(buffer_pool_stats().cached_bytes == 0);
    const BufferPoolStats before = buffer_pool_stats();
    void* again = pool_allocate(8192);  // a fresh buffer: the pool had none left
    CHECK(buffer_pool_stats().fresh == before.fresh + 1);
    pool_release(again);
    pool_release(kept);  // still a buffer of the pool: it joins the free ones
    CHECK(buffer_pool_stats().cached_bytes == 8192 + 4096);
  });
}

TEST_CASE("buffer pool: a released small block serves the next request of its 16-byte class") {
  on_fresh_thread([] {
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
  });
}

TEST_CASE("buffer pool: allocate_shared with PoolAllocator gives its block back to the pool") {
  auto value = std::allocate_shared<std::uint64_t>(PoolAllocator<std::uint64_t>(), 7);
  const std::size_t cached = buffer_pool_stats().small_cached_bytes;
  value.reset();
  CHECK(buffer_pool_stats().small_cached_bytes > cached);
}

TEST_CASE("buffer pool: blocks released on another thread join that thread's pool") {
  // Allocated on a fresh thread, whose empty pool cannot serve 4096 bytes from a larger
  // buffer that tests run before this one left in this thread's.
  void* buffer = nullptr;
  void* block = nullptr;
  std::thread([&] {
    buffer = pool_allocate(4096);
    block = small_allocate(64);
  }).join();
  std::size_t cached = 0, small_cached = 0;
  std::thread other([&] {
    pool_release(buffer);
    small_release(block, 64);
    cached = buffer_pool_stats().cached_bytes;
    small_cached = buffer_pool_stats().small_cached_bytes;
  });  // its pools, holding both, are freed when it ends
  other.join();
  CHECK(cached == 4096);
  CHECK(small_cached == 64);
}
