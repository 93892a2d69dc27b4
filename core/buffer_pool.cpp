// The per-thread pools of tensor buffers and graph blocks (see buffer_pool.hpp).
#include "core/buffer_pool.hpp"

#include <map>
#include <vector>

namespace qkv::core {

namespace {

constexpr std::size_t kAlign = 64;
constexpr std::size_t kMaxCachedBytes = std::size_t{1} << 30;
// A request may take a free buffer up to 1/kFitSlack larger than its size: near sizes
// (a (B·T)×4C activation and a B·H·T×T one) share buffers, while a small request never
// takes a large buffer that a later large request of the same step would then make anew
// (the process's size is the first step's fresh buffers). A phase that asks for other
// sizes starts from a trimmed pool instead (pool_trim).
constexpr std::size_t kFitSlack = 8;

constexpr std::size_t kSmallStep = 16;  // a multiple of alignof(std::max_align_t)
constexpr std::size_t kSmallMax = 1024;
constexpr std::size_t kSmallClasses = kSmallMax / kSmallStep;
constexpr std::size_t kMaxCachedSmallBytes = std::size_t{64} << 20;

// Sizes round up to whole cache lines, so that near sizes share a class.
std::size_t size_class(std::size_t bytes) { return (bytes + kAlign - 1) / kAlign * kAlign; }

// A value buffer is preceded by one cache line holding its capacity, so that a buffer
// handed out for a smaller request goes back to the class it was made for.
void* new_buffer(std::size_t capacity) {
  char* base = static_cast<char*>(::operator new(capacity + kAlign, std::align_val_t(kAlign)));
  *reinterpret_cast<std::size_t*>(base) = capacity;
  return base + kAlign;
}
std::size_t capacity_of(void* buffer) {
  return *reinterpret_cast<const std::size_t*>(static_cast<char*>(buffer) - kAlign);
}
void free_buffer(void* buffer) {
  ::operator delete(static_cast<char*>(buffer) - kAlign, std::align_val_t(kAlign));
}

// Index of the 16-byte class of a small block of up to kSmallMax bytes (0 counts as 1),
// and that class's size.
std::size_t small_index(std::size_t bytes) { return bytes ? (bytes - 1) / kSmallStep : 0; }
std::size_t small_size(std::size_t index) { return (index + 1) * kSmallStep; }

// A free small block holds the link to the next one of its class, so the lists need no
// memory of their own.
struct FreeBlock {
  FreeBlock* next;
};

thread_local bool pool_gone = false;  // the thread is ending and its pools were destroyed

struct Pool {
  // Free buffers by capacity, smallest first. In the steady state the lists keep their
  // capacity and no class is new, so taking and giving back allocates nothing.
  std::map<std::size_t, std::vector<void*>> free;
  FreeBlock* small[kSmallClasses] = {};
  BufferPoolStats stats;

  ~Pool() {
    for (auto& entry : free)
      for (void* buffer : entry.second) free_buffer(buffer);
    for (std::size_t i = 0; i < kSmallClasses; ++i)
      while (FreeBlock* block = small[i]) {
        small[i] = block->next;
        ::operator delete(block, small_size(i));
      }
    pool_gone = true;
  }
};

Pool& this_thread_pool() {
  thread_local Pool pool;
  return pool;
}

// The smallest free buffer that holds `size` bytes and is at most 1/kFitSlack larger.
void* take_free(Pool& pool, std::size_t size) {
  const std::size_t largest = size + size / kFitSlack;
  for (auto it = pool.free.lower_bound(size); it != pool.free.end() && it->first <= largest; ++it) {
    if (it->second.empty()) continue;
    void* buffer = it->second.back();
    it->second.pop_back();
    pool.stats.cached_bytes -= it->first;
    return buffer;
  }
  return nullptr;
}

}  // namespace

void* pool_allocate(std::size_t bytes) {
  if (bytes == 0) return nullptr;
  const std::size_t size = size_class(bytes);
  if (!pool_gone) {
    Pool& pool = this_thread_pool();
    if (void* buffer = take_free(pool, size)) {
      ++pool.stats.reused;
      return buffer;
    }
    ++pool.stats.fresh;
  }
  return new_buffer(size);
}

void pool_release(void* buffer) noexcept {
  if (buffer == nullptr) return;
  if (pool_gone) return free_buffer(buffer);
  const std::size_t capacity = capacity_of(buffer);
  Pool& pool = this_thread_pool();
  if (pool.stats.cached_bytes + capacity > kMaxCachedBytes) return free_buffer(buffer);
  try {
    pool.free[capacity].push_back(buffer);
  } catch (const std::bad_alloc&) {
    return free_buffer(buffer);
  }
  pool.stats.cached_bytes += capacity;
}

void pool_trim() noexcept {
  if (pool_gone) return;
  Pool& pool = this_thread_pool();
  for (auto& entry : pool.free) {
    for (void* buffer : entry.second) free_buffer(buffer);
    entry.second.clear();
  }
  pool.stats.cached_bytes = 0;
}

void* small_allocate(std::size_t bytes) {
  if (bytes > kSmallMax) return ::operator new(bytes);
  const std::size_t index = small_index(bytes);
  if (!pool_gone) {
    Pool& pool = this_thread_pool();
    if (FreeBlock* block = pool.small[index]) {
      pool.small[index] = block->next;
      pool.stats.small_cached_bytes -= small_size(index);
      return block;
    }
    ++pool.stats.small_fresh;
  }
  return ::operator new(small_size(index));
}

void small_release(void* block, std::size_t bytes) noexcept {
  if (bytes > kSmallMax) return ::operator delete(block, bytes);
  const std::size_t index = small_index(bytes);
  const std::size_t size = small_size(index);
  if (pool_gone) return ::operator delete(block, size);
  Pool& pool = this_thread_pool();
  if (pool.stats.small_cached_bytes + size > kMaxCachedSmallBytes)
    return ::operator delete(block, size);
  pool.small[index] = new (block) FreeBlock{pool.small[index]};
  pool.stats.small_cached_bytes += size;
}

BufferPoolStats buffer_pool_stats() { return pool_gone ? BufferPoolStats{} : this_thread_pool().stats; }

}  // namespace qkv::core
