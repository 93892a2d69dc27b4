// The per-thread pool of tensor buffers (see buffer_pool.hpp): free buffers by size class.
#include "core/buffer_pool.hpp"

#include <new>
#include <unordered_map>
#include <vector>

namespace qkv::core {

namespace {

constexpr std::size_t kAlign = 64;
constexpr std::size_t kMaxCachedBytes = std::size_t{1} << 30;

// Sizes round up to whole cache lines, so that near sizes share a class.
std::size_t size_class(std::size_t bytes) { return (bytes + kAlign - 1) / kAlign * kAlign; }

void free_buffer(void* buffer) { ::operator delete(buffer, std::align_val_t(kAlign)); }

thread_local bool pool_gone = false;  // the thread is ending and its pool was destroyed

struct Pool {
  // Free buffers of each size class. In the steady state the lists keep their capacity,
  // so taking and giving back allocates nothing.
  std::unordered_map<std::size_t, std::vector<void*>> free;
  BufferPoolStats stats;

  ~Pool() {
    for (auto& entry : free)
      for (void* buffer : entry.second) free_buffer(buffer);
    pool_gone = true;
  }
};

Pool& this_thread_pool() {
  thread_local Pool pool;
  return pool;
}

}  // namespace

void* pool_allocate(std::size_t bytes) {
  if (bytes == 0) return nullptr;
  const std::size_t size = size_class(bytes);
  if (!pool_gone) {
    Pool& pool = this_thread_pool();
    auto it = pool.free.find(size);
    if (it != pool.free.end() && !it->second.empty()) {
      void* buffer = it->second.back();
      it->second.pop_back();
      pool.stats.cached_bytes -= size;
      ++pool.stats.reused;
      return buffer;
    }
    ++pool.stats.fresh;
  }
  return ::operator new(size, std::align_val_t(kAlign));
}

void pool_release(void* buffer, std::size_t bytes) noexcept {
  if (buffer == nullptr) return;
  const std::size_t size = size_class(bytes);
  if (pool_gone) return free_buffer(buffer);
  Pool& pool = this_thread_pool();
  if (pool.stats.cached_bytes + size > kMaxCachedBytes) return free_buffer(buffer);
  try {
    pool.free[size].push_back(buffer);
  } catch (const std::bad_alloc&) {
    return free_buffer(buffer);
  }
  pool.stats.cached_bytes += size;
}

BufferPoolStats buffer_pool_stats() { return pool_gone ? BufferPoolStats{} : this_thread_pool().stats; }

}  // namespace qkv::core
