// A sweep's trainings on worker threads, the main thread drawing their progress (see
// sweep.hpp).
#include "ablate/sweep.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "ablate/progress.hpp"
#include "core/allocator.hpp"
#include "core/blas.hpp"
#include "train/progress.hpp"
#include "train/stop_signals.hpp"
#include "train/trainer.hpp"

namespace qkv::ablate {

namespace {

using Clock = std::chrono::steady_clock;

constexpr auto kPollInterval = std::chrono::milliseconds(100);
constexpr std::size_t kIdle = static_cast<std::size_t>(-1);

// One job's current run, written by its worker and read by the main thread.
struct Slot {
  std::atomic<std::size_t> run{kIdle};  // index into the runs to train
  std::atomic<std::size_t> step{0};
  std::atomic<std::size_t> start_step{0};
};

// What the workers share: the queue of runs, what ended, the first error.
struct Shared {
  const SweepPlan& plan;
  std::vector<const PlannedRun*> todo;
  const train::StopSignals& signals;
  std::atomic<std::size_t> next{0};
  std::atomic<bool> failed{false};
  std::mutex mutex;  // guards everything below, and Trainer construction
  std::condition_variable changed;
  std::size_t workers_done = 0;
  std::vector<std::string> finished_lines;  // for the main thread to print
  std::size_t finished = 0, resumed = 0, steps_finished = 0;
  std::exception_ptr error;

  Shared(const SweepPlan& p, const train::StopSignals& s) : plan(p), signals(s) {}
};

std::string finished_line(const PlannedRun& run, const train::TrainSummary& summary,
                          std::size_t index, std::size_t total) {
  return fmt::format("[{}/{}] {}: best seq_acc {}, final {}, {:.1f} s", index, total,
                     run.label(), summary.best_seq_acc ? fmt::format("{:.4f}", *summary.best_seq_acc)
                                                       : std::string("none"),
                     fmt::format("{:.4f}", summary.last_eval.seq_acc), summary.elapsed_s);
}

// Trains one run; returns its summary.
train::TrainSummary train_run(Shared& shared, const PlannedRun& run, Slot& slot) {
  std::unique_ptr<train::Trainer> trainer;
  {
    // Construction sets process-wide state (BLAS threads, malloc thresholds) to the same
    // values for every run; one at a time keeps those writes apart from each other.
    const std::lock_guard<std::mutex> lock(shared.mutex);
    train::TrainerOptions options;
    options.out_dir = run.dir;
    options.resume = run.state == RunState::partial;
    options.out = nullptr;
    options.stop_on_signals = true;
    options.on_step = [&slot](std::size_t step) { slot.step = step; };
    trainer = std::make_unique<train::Trainer>(load_run_config(shared.plan, run), options);
    slot.start_step = trainer->step();
    slot.step = trainer->step();
  }
  return trainer->run();
}

void worker(Shared& shared, Slot& slot, std::size_t total_runs) {
  while (shared.signals.pending() == 0 && !shared.failed) {
    const std::size_t index = shared.next++;
    if (index >= shared.todo.size()) break;
    const PlannedRun& run = *shared.todo[index];
    slot.run = index;
    try {
      const train::TrainSummary summary = train_run(shared, run, slot);
      if (summary.stopped_by != 0) break;
      const std::lock_guard<std::mutex> lock(shared.mutex);
      shared.steps_finished += summary.steps - slot.start_step;
      shared.resumed += run.state == RunState::partial ? 1 : 0;
      ++shared.finished;
      shared.finished_lines.push_back(finished_line(
          run, summary, total_runs - shared.todo.size() + shared.finished, total_runs));
    } catch (const std::exception& error) {
      const std::lock_guard<std::mutex> lock(shared.mutex);
      if (!shared.error)
        shared.error = std::make_exception_ptr(std::runtime_error(
            run.label() + " (" + run.dir + "): " + error.what()));
      shared.failed = true;
    }
    slot.run = kIdle;
  }
  slot.run = kIdle;
  const std::lock_guard<std::mutex> lock(shared.mutex);
  ++shared.workers_done;
  shared.changed.notify_all();
}

// The running runs and the steps trained so far, for the progress block.
std::vector<RunningView> running_views(const Shared& shared, const std::vector<Slot>& slots,
                                       std::size_t& steps_done) {
  std::vector<RunningView> views;
  for (const Slot& slot : slots) {
    const std::size_t index = slot.run;
    if (index == kIdle) continue;
    const std::size_t step = slot.step, start = slot.start_step;
    steps_done += step > start ? step - start : 0;
    views.push_back({shared.todo[index]->label(), step, shared.plan.steps});
  }
  return views;
}

// The main thread's loop: progress until every worker has ended.
void watch(Shared& shared, const std::vector<Slot>& slots, std::size_t jobs,
           SweepProgress& progress, std::size_t finished_before) {
  std::unique_lock<std::mutex> lock(shared.mutex);
  for (;;) {
    for (const std::string& line : shared.finished_lines) progress.run_finished(line);
    shared.finished_lines.clear();
    if (shared.workers_done == jobs) break;
    std::size_t steps_done = shared.steps_finished;
    const std::size_t runs_done = finished_before + shared.finished;
    lock.unlock();
    const std::vector<RunningView> running = running_views(shared, slots, steps_done);
    progress.draw(running, runs_done, steps_done);
    lock.lock();
    shared.changed.wait_for(lock, kPollInterval);
  }
}

// Every rank's counts and stop, summed (one allreduce; the outcome's other fields are
// the same on every rank).
void gather(train::Communicator& communicator, SweepOutcome& outcome) {
  const int signal = train::agree_on_signal(communicator, outcome.stopped_by);
  double counts[2] = {double(outcome.trained), double(outcome.resumed)};
  communicator.allreduce_sum(counts, 2);
  outcome.trained = static_cast<std::size_t>(counts[0]);
  outcome.resumed = static_cast<std::size_t>(counts[1]);
  outcome.stopped_by = signal;
}

}  // namespace

SweepOutcome run_sweep(const SweepPlan& plan, const SweepOptions& options) {
  if (options.jobs < 1) throw std::invalid_argument("run_sweep: jobs must be at least 1");
  train::Communicator* ranks = options.communicator;
  if (ranks != nullptr) ranks->barrier();  // every rank has read the folders' states
  const Clock::time_point start = Clock::now();
  // Before any worker: these are process-wide, and every run wants the same.
  core::tune_allocator();
  core::set_blas_threads(1);
  const train::StopSignals signals;  // held for the whole sweep, between runs too
  Shared shared(plan, signals);
  std::size_t steps_to_train = 0, unfinished = 0;
  for (const PlannedRun& run : plan.runs) {
    if (run.state == RunState::finished) continue;
    // the rank's share: every rank read the same states, so the shares are disjoint
    const std::size_t index = unfinished++;
    if (ranks == nullptr || index % ranks->size() == ranks->rank()) {
      shared.todo.push_back(&run);
      steps_to_train += plan.steps - run.step;
    }
  }
  SweepOutcome outcome;
  outcome.finished_before = plan.runs.size() - unfinished;
  const std::size_t jobs = std::max<std::size_t>(1, std::min(options.jobs, shared.todo.size()));
  SweepProgress progress(options.out,
                         options.out != nullptr &&
                             options.terminal.value_or(train::is_terminal(options.out)),
                         plan.name, plan.runs.size(), steps_to_train);
  std::vector<Slot> slots(jobs);
  std::vector<std::thread> threads;
  for (std::size_t j = 0; j < jobs; ++j)
    threads.emplace_back(worker, std::ref(shared), std::ref(slots[j]), plan.runs.size());
  watch(shared, slots, jobs, progress, outcome.finished_before);
  for (std::thread& thread : threads) thread.join();
  progress.finish();
  if (shared.error) std::rethrow_exception(shared.error);
  outcome.trained = shared.finished;
  outcome.resumed = shared.resumed;
  outcome.stopped_by = signals.pending();
  if (ranks != nullptr) gather(*ranks, outcome);
  outcome.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return outcome;
}

}  // namespace qkv::ablate
