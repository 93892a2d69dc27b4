// The buffers behind tensors' values: a per-thread pool that keeps freed buffers by size
// and hands them out again, so that a training step, which frees and makes the same
// activations and gradients as the step before, allocates nothing once it has run once.
//
//   void* p = pool_allocate(4096);   // a buffer of the pool's, or a fresh one
//   pool_release(p, 4096);           // back to this thread's pool, for the next request
//   BufferPoolStats s = buffer_pool_stats();   // s.fresh counts the misses
//
// Tensor storage uses it (core/node.hpp); kernels need not. Thread safety: each thread
// has its own pool, so nothing is shared or locked. A buffer may be released on another
// thread than the one that allocated it (it then joins that thread's pool). At most 1 GiB
// of free buffers is kept per thread; beyond that, released buffers are freed, and a
// thread's pool is freed when the thread ends.
#pragma once

#include <cstddef>

namespace qkv::core {

// A buffer of at least `bytes`, aligned to 64 bytes, uninitialized. nullptr for 0 bytes.
void* pool_allocate(std::size_t bytes);
// Gives back a buffer of pool_allocate with the same `bytes`.
void pool_release(void* buffer, std::size_t bytes) noexcept;

struct BufferPoolStats {
  std::size_t fresh = 0;         // requests this thread's pool could not serve
  std::size_t reused = 0;        // requests it served from a freed buffer
  std::size_t cached_bytes = 0;  // free buffers it holds now
};
BufferPoolStats buffer_pool_stats();  // this thread's

}  // namespace qkv::core
