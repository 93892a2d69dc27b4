// The per-thread pool behind parallel_for (see parallel.hpp). Workers spin a little after
// each job before sleeping: a step hands them a job every few microseconds, and waking a
// sleeping thread costs more than most jobs take.
#include "core/parallel.hpp"

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define QKV_SPIN_PAUSE() _mm_pause()
#else
#define QKV_SPIN_PAUSE() std::this_thread::yield()
#endif

namespace qkv::core {

namespace {
// How often a waiting thread checks for work before it sleeps (a pause is ~40-140 cycles).
constexpr int kSpins = 5000;
// The task field of a job that takes no more claims.
constexpr std::uint64_t kClosed = 0xffffffffu;

thread_local ThreadPool* current_pool = nullptr;
thread_local bool inside_task = false;
}  // namespace

// A job is published as a generation number; its tasks are claimed one by one with a
// compare-and-swap on (generation, next task), so a worker that wakes late can never take
// a task of a later job. The caller claims tasks too and waits only for claimed tasks to
// finish: a worker the system has not scheduled costs nothing but its share of the work.
class ThreadPool {
 public:
  explicit ThreadPool(std::size_t threads) : threads_(threads) {
    for (std::size_t i = 1; i < threads; ++i) workers_.emplace_back([this] { work(); });
  }

  ~ThreadPool() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_.store(true);
      published_.fetch_add(1);
    }
    wake_.notify_all();
    for (std::thread& t : workers_) t.join();
  }

  std::size_t size() const { return threads_; }

  void run(std::size_t tasks, TaskRef task) {
    const std::uint64_t generation = published_.load() + 1;
    if (tasks >= kClosed) throw std::invalid_argument("parallel_tasks: too many tasks");
    task_ = &task;
    tasks_.store(tasks);
    done_.store(0);
    claim_.store(generation << 32);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      published_.store(generation);
    }
    wake_.notify_all();
    take_tasks(generation);
    for (int spin = 0; done_.load() != tasks; ++spin) {
      if (spin > kSpins) std::this_thread::yield();
      else QKV_SPIN_PAUSE();
    }
    claim_.store(generation << 32 | kClosed);  // before tasks_ changes for the next job
    if (error_) {
      std::exception_ptr error = error_;
      error_ = nullptr;
      std::rethrow_exception(error);
    }
  }

 private:
  // The next task of this generation, or kClosed when none is left (or the job is over).
  std::size_t claim(std::uint64_t generation) {
    std::uint64_t current = claim_.load();
    while ((current >> 32) == generation && (current & kClosed) < tasks_.load()) {
      if (claim_.compare_exchange_weak(current, current + 1)) return current & kClosed;
    }
    return kClosed;
  }

  void take_tasks(std::uint64_t generation) {
    inside_task = true;
    for (std::size_t i = claim(generation); i != kClosed; i = claim(generation)) {
      try {
        (*task_)(i);
      } catch (...) {
        std::lock_guard<std::mutex> lock(mutex_);
        if (!error_) error_ = std::current_exception();
      }
      done_.fetch_add(1);
    }
    inside_task = false;
  }

  void work() {
    std::uint64_t seen = 0;
    while (true) {
      std::uint64_t now = published_.load();
      for (int spin = 0; now == seen && spin < kSpins; ++spin) {
        QKV_SPIN_PAUSE();
        now = published_.load();
      }
      if (now == seen) {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [&] { return published_.load() != seen; });
        now = published_.load();
      }
      seen = now;
      if (stop_.load()) return;
      take_tasks(now);
    }
  }

  const std::size_t threads_;
  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::atomic<std::uint64_t> published_{0};  // the latest job's generation
  std::atomic<std::uint64_t> claim_{0};      // generation << 32 | next task
  std::atomic<std::size_t> done_{0};         // finished tasks of the latest job
  const TaskRef* task_ = nullptr;
  std::atomic<std::size_t> tasks_{0};
  std::exception_ptr error_;
  std::atomic<bool> stop_{false};
};

namespace {
// This thread's pool of that size, made on first use and kept until the thread ends (a
// scope of another size gets a pool of its own, so none is destroyed while in use).
ThreadPool* pool_for_this_thread(std::size_t threads) {
  thread_local std::vector<std::unique_ptr<ThreadPool>> pools;
  for (const auto& pool : pools)
    if (pool->size() == threads) return pool.get();
  pools.push_back(std::make_unique<ThreadPool>(threads));
  return pools.back().get();
}
}  // namespace

ParallelScope::ParallelScope(std::size_t threads) : previous_(current_pool) {
  if (threads == 0) throw std::invalid_argument("ParallelScope: threads must be at least 1, got 0");
  current_pool = threads > 1 && !inside_task ? pool_for_this_thread(threads) : nullptr;
}

ParallelScope::~ParallelScope() { current_pool = previous_; }

std::size_t parallel_threads() {
  return current_pool && !inside_task ? current_pool->size() : 1;
}

void parallel_tasks(std::size_t tasks, TaskRef task) {
  if (parallel_threads() <= 1 || tasks <= 1) {
    for (std::size_t i = 0; i < tasks; ++i) task(i);
    return;
  }
  current_pool->run(tasks, task);
}

}  // namespace qkv::core
