// The memory behind tensors and the autograd graph: per-thread pools that keep freed
// blocks and hand them out again, so that a training step, which frees and makes the same
// activations, gradients and graph nodes as the step before, allocates nothing once it
// has run once.
//
//   void* p = pool_allocate(4096);   // a value buffer: the pool's, or a fresh one
//   pool_release(p);                 // back to this thread's pool, for the next request
//   pool_trim();                     // the free buffers back to the system: a phase ends
//   auto node = std::allocate_shared<Node>(PoolAllocator<Node>());  // a small block
//   Shape shape{2, 3};               // Shape, Inputs and BackwardFn use small blocks too
//   BufferPoolStats s = buffer_pool_stats();   // s.fresh counts the misses
//
// Two kinds of blocks:
//   - value buffers (pool_allocate): tensor storage (core/node.hpp), sizes rounded up to
//     whole cache lines. A request no free buffer of its size can serve takes the smallest
//     free one up to 1/8 larger before a fresh one is made (the buffer goes back to its
//     own size when released); a small request never takes a large buffer, which a large
//     request of the same step would then make anew. A phase that asks for other sizes
//     than the one before (evaluation, a checkpoint's copies after training) starts with
//     pool_trim(): the free buffers go back to the system allocator, which serves the new
//     sizes from that memory instead of adding to the process;
//   - small blocks (small_allocate, PoolAllocator): the graph's bookkeeping, up to 1 KiB,
//     kept in per-thread free lists by 16-byte class.
// Thread safety: each thread has its own pools, so nothing is shared or locked. A block
// may be released on another thread than the one that allocated it (it then joins that
// thread's pool). A thread keeps at most 1 GiB of free value buffers and 64 MiB of free
// small blocks; beyond that, released blocks are freed, and a thread's pools are freed
// when the thread ends. std::pmr's pools do not fit: a block must go back to the resource
// that made it and a pool frees every block when it is destroyed, while graph nodes
// outlive their thread and are freed on others.
#pragma once

#include <cstddef>
#include <new>

namespace qkv::core {

// A buffer of at least `bytes`, aligned to 64 bytes, uninitialized. nullptr for 0 bytes.
void* pool_allocate(std::size_t bytes);
// Gives back a buffer of pool_allocate (or nullptr).
void pool_release(void* buffer) noexcept;
// Frees this thread's free value buffers (buffers in use are untouched and come back to
// the pool as usual): for where a phase ends and the next asks for other sizes.
void pool_trim() noexcept;

// A block of `bytes` (> 0) aligned for any type, uninitialized; blocks up to 1 KiB come
// from this thread's free lists.
void* small_allocate(std::size_t bytes);
// Gives back a block of small_allocate with the same `bytes`.
void small_release(void* block, std::size_t bytes) noexcept;

struct BufferPoolStats {
  std::size_t fresh = 0;         // value-buffer requests this thread's pool could not serve
  std::size_t reused = 0;        // value-buffer requests it served from a freed buffer
  std::size_t cached_bytes = 0;  // free value buffers it holds now (their class sizes)
  std::size_t small_fresh = 0;   // small-block requests it could not serve
  std::size_t small_cached_bytes = 0;  // free small blocks it holds now
};
BufferPoolStats buffer_pool_stats();  // this thread's

// A standard allocator over small_allocate, for the graph's containers and shared_ptrs
// (std::allocate_shared). Stateless: every instance frees every other's blocks.
template <class T> struct PoolAllocator {
  static_assert(alignof(T) <= alignof(std::max_align_t), "PoolAllocator: over-aligned type");
  using value_type = T;

  PoolAllocator() noexcept = default;
  template <class U> PoolAllocator(const PoolAllocator<U>&) noexcept {}

  T* allocate(std::size_t n) {
    if (n > static_cast<std::size_t>(-1) / sizeof(T)) throw std::bad_array_new_length();
    return static_cast<T*>(small_allocate(n * sizeof(T)));
  }
  void deallocate(T* p, std::size_t n) noexcept { small_release(p, n * sizeof(T)); }

  template <class U> bool operator==(const PoolAllocator<U>&) const noexcept { return true; }
  template <class U> bool operator!=(const PoolAllocator<U>&) const noexcept { return false; }
};

}  // namespace qkv::core
