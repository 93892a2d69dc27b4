// Threads for the ops of one training step: a small pool owned by the thread that trains,
// and parallel_for, which the kernels (gemm, attention, row-wise passes) use to split
// their work over it.
//
//   {
//     core::ParallelScope parallel(2);   // this thread and one worker, until the scope ends
//     loss = train_step();               // ops that are worth it run on both
//   }
//   core::parallel_for(rows, 64, [&](std::size_t begin, std::size_t end) { ... });
//
// Without a scope (or with ParallelScope(1)) parallel_for runs inline, so nothing changes
// for a one-thread run. The split is fixed by the sizes and the thread count alone, never
// by timing, so a result is the same on every run with the same thread count.
//
// Thread safety: the current pool is thread_local. Separate trainers on separate threads
// (ablate/) each get their own pool and never share one; a worker runs tasks of its own
// pool only. A parallel_for inside a task (or on a worker) runs inline, so the pool is
// never asked for more threads than it has.
//
// OpenBLAS must then run on one thread (set_blas_threads(1)): core::gemm splits a large
// product over the pool itself, so the two never compete for the cores.
#pragma once

#include <cstddef>
#include <memory>
#include <type_traits>

namespace qkv::core {

class ThreadPool;

// Makes a pool of `threads` (this thread included) the current one for this thread until
// the scope ends; the pool is kept for the thread's next scope of the same size.
class ParallelScope {
 public:
  explicit ParallelScope(std::size_t threads);
  ~ParallelScope();
  ParallelScope(const ParallelScope&) = delete;
  ParallelScope& operator=(const ParallelScope&) = delete;

 private:
  ThreadPool* previous_;
};

// The threads parallel_for may use here and now: the current pool's size, or 1 (no
// scope, or inside a parallel task).
std::size_t parallel_threads();

// What parallel_tasks runs: a reference to any callable taking the task's index. It keeps
// the callable's address, never a copy, so handing over a lambda allocates nothing (a
// std::function would put a lambda of more than two captures on the heap, at every split
// of every kernel). The callable must outlive the call, as a lambda written in the call
// does: parallel_tasks returns only once every task is done.
class TaskRef {
 public:
  template <class F, class = std::enable_if_t<!std::is_same_v<std::decay_t<F>, TaskRef>>>
  TaskRef(F&& task) noexcept
      : callable_(const_cast<void*>(static_cast<const void*>(std::addressof(task)))),
        call_([](void* callable, std::size_t i) {
          (*static_cast<std::remove_reference_t<F>*>(callable))(i);
        }) {}
  void operator()(std::size_t i) const { call_(callable_, i); }

 private:
  void* callable_;
  void (*call_)(void*, std::size_t);
};

// Runs task(i) for i < tasks, spread over the current pool; returns when all are done.
// An exception in a task is rethrown here (the first one).
void parallel_tasks(std::size_t tasks, TaskRef task);

// Splits [0, n) into one contiguous chunk per thread and runs body(begin, end) on each.
// `min_per_thread` is the smallest chunk worth a thread: smaller ranges run inline.
template <class F> void parallel_for(std::size_t n, std::size_t min_per_thread, F&& body) {
  const std::size_t threads = parallel_threads();
  std::size_t chunks = min_per_thread ? n / min_per_thread : n;
  if (chunks > threads) chunks = threads;
  if (chunks <= 1) {
    if (n) body(std::size_t{0}, n);
    return;
  }
  parallel_tasks(chunks, [&](std::size_t c) { body(n * c / chunks, n * (c + 1) / chunks); });
}

}  // namespace qkv::core
