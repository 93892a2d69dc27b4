// run_sweep: trains every run of a plan that is not finished, `jobs` at a time, each on a
// thread of this process with a Trainer of its own and one BLAS thread.
//
// Why threads and not processes: nothing the trainings share is mutable. The autograd's
// grad mode is thread_local, the layer and task registries are only read, each run loads
// its own config tree (a ConfigNode records what it read, so a tree is never shared), has
// its own model, optimizer, RNGs, metrics file and run-folder lock, and prints nothing
// (its progress comes back through TrainerOptions::on_step). What is process-wide is set
// the same for every run and before any starts: OpenBLAS's thread count (1), glibc's
// malloc thresholds (core::tune_allocator, once). Trainers are constructed one at a time
// all the same (construction sets both again). tests/ablate checks that a sweep at two
// jobs writes the same metrics.jsonl and weights, bit for bit, as at one job.
//
// Resumable: a finished run (plan.hpp) is skipped, a partial one resumes from its
// last.safetensors, a fresh one starts. SIGINT or SIGTERM (stop_signals.hpp) stops every
// running training after its current step with last.safetensors written and starts no
// other; run_sweep then returns with stopped_by set, and the same command later finishes
// the sweep. A run that fails (a diverged training, a folder another process holds) starts
// no other run either; once the running ones have ended, its error is rethrown, prefixed
// with the run.
//
// Over several processes (options.communicator, e.g. `mpirun -np N qkv ablate`): every
// rank plans the same sweep, then trains its share of the unfinished runs (the i-th goes
// to rank i mod N), each a single-process training as above, `jobs` at a time; run folders
// must be on a filesystem every rank sees. run_sweep starts once every rank has planned
// (no rank's training changes a folder another is still reading) and returns once every
// rank has ended its share, with the counts and the stop signal of all ranks. A failed run
// is thrown on its own rank only (the program then ends the job: mpi/session.hpp).
//
//   SweepPlan plan = plan_sweep(request);
//   SweepOptions options;
//   options.jobs = 2;
//   SweepOutcome outcome = run_sweep(plan, options);   // progress on stdout
//   if (outcome.stopped_by == 0) write_tables(plan);
#pragma once

#include <cstddef>
#include <cstdio>
#include <optional>

#include "ablate/plan.hpp"
#include "train/communicator.hpp"

namespace qkv::ablate {

struct SweepOptions {
  std::size_t jobs = 1;           // trainings at once, at least 1
  std::FILE* out = stdout;        // progress and one line per finished run; null: silent
  std::optional<bool> terminal;   // a redrawn progress block, or plain lines; unset: isatty
  train::Communicator* communicator = nullptr;  // spread the runs over its ranks; null: alone
};

// Over several ranks: the counts of all of them.
struct SweepOutcome {
  std::size_t finished_before = 0;  // runs already finished when it started
  std::size_t trained = 0;          // runs finished by this sweep
  std::size_t resumed = 0;          // of those, runs continued from a checkpoint
  int stopped_by = 0;               // SIGINT or SIGTERM when a signal stopped it (any rank)
  double seconds = 0;               // this sweep's wall time
};

SweepOutcome run_sweep(const SweepPlan& plan, const SweepOptions& options);

}  // namespace qkv::ablate
