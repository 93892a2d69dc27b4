// Trainer: runs one config from its first step (or a checkpoint) to its last.
//
// Each step: sample a batch → forward → cross-entropy on the masked positions → backward
// → check that the loss and every gradient are finite → clip → optimizer step (its
// schedule moves with its step count). Every train.log_every steps a train line goes to
// metrics.jsonl; every train.eval_every steps and after the last one the model is
// evaluated on the held-out set (evaluate.hpp). The run folder receives
//   config.yaml        the resolved config
//   metrics.jsonl      see metrics.hpp
//   last.safetensors   every train.checkpoint_every steps (or at each evaluation when that
//                      is 0) and at the end
//   best.safetensors   whenever eval seq_acc beats the best so far
// Checkpoints hold everything the run depends on (weights, optimizer state, step, RNG
// states), so a resumed run continues bit for bit as if it had never stopped (on one
// thread: several BLAS threads may sum in another order).
//
// A non-finite loss or gradient, or a finite loss over 100 x ln(V) (a model guessing
// uniformly scores ln(V); a loss of 5e12 is no longer training), stops the run before the
// optimizer step: run() throws TrainingDiverged naming the step and the first parameter
// whose gradient is not finite, and the last checkpoint on disk is the last good one. An
// optimizer step that makes a parameter non-finite from finite gradients is reported as
// what it is, not as a rate too high: the optimizer's state is corrupt.
//
// Before anything is built (checked at construction):
//   - one writer per run folder: a lock on out_dir/.lock (run_lock.hpp), held from the
//     construction until run() returns (and again during a later run()), names the pid of
//     another run that holds it;
//   - the run's estimated memory must fit in the memory available (resources.hpp);
//   - with resume, the config's task must be the run's (its resolved task section, as the
//     checkpoint saved it): another task would be trained silently into the old run, its
//     best.safetensors carried over. options.force continues with the new task on
//     purpose: the change becomes a note in metrics.jsonl, and the best so far is
//     forgotten (the next evaluation writes best.safetensors).
//
// With options.stop_on_signals, SIGINT and SIGTERM stop the run after its current step
// (stop_signals.hpp): the window since the last train line becomes one, last.safetensors
// is written, and run() returns with TrainSummary::stopped_by set. A second signal kills
// the process at once.
//
// Data-parallel (options.communicator with N > 1 ranks, e.g. under `mpirun -np N qkv
// train`; data_parallel.hpp has the arithmetic): train.batch_size is the global batch, of
// which each rank trains batch_size / N rows; the gradients are summed over the ranks
// every step, so every rank applies the same update and the weights stay identical, and N
// ranks train what one process would, up to float round-off. Evaluation is split over the
// ranks and summed. Rank 0 alone holds the run folder: the lock, config.yaml,
// metrics.jsonl, the checkpoints (which record N and the rows per rank) and the printing;
// the others receive its checkpoint when resuming. A run resumes on another N only with
// the same global batch (otherwise the constructor refuses it, saying why). The
// construction's errors are agreed on (Communicator::agree): every rank throws, with the
// failing rank's message. Not with model.dropout > 0 (refused).
//
//   Config config = load_config("configs/copy.yaml");
//   TrainerOptions options;
//   options.out_dir = "runs/copy";
//   Trainer trainer(config, options);   // prints the config and parameter count
//   TrainSummary summary = trainer.run();
#pragma once

#include <cstddef>
#include <cstdio>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "core/parameter.hpp"
#include "core/random.hpp"
#include "layers/transformer.hpp"
#include "optim/optimizer.hpp"
#include "train/communicator.hpp"
#include "train/config.hpp"
#include "train/evaluate.hpp"
#include "train/run_lock.hpp"
#include "tasks/task.hpp"

namespace qkv::io {
struct Checkpoint;
}

namespace qkv::train {

class DataParallel;

// A non-finite loss or gradient; the message names the step and the parameter.
class TrainingDiverged : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct TrainerOptions {
  std::string out_dir;        // the run folder (created if missing)
  bool resume = false;        // continue from out_dir/last.safetensors
  std::FILE* out = stdout;    // the config, progress and messages; null: silent
  std::optional<bool> terminal;  // progress bar or plain lines; unset: isatty(out)
  // Stop at the first evaluation whose seq_acc reaches this (then save as at the end);
  // unset: the config's train.stop_at_seq_acc, if it is > 0.
  std::optional<double> stop_at_seq_acc;
  bool force = false;            // with resume: continue even if the task changed (see above)
  bool stop_on_signals = false;  // run() handles SIGINT and SIGTERM (see above)
  // Called after each step with the step reached, on run()'s thread: a sweep's progress
  // (out is null there). Unset: nothing is called.
  std::function<void(std::size_t step)> on_step;
  // The ranks that train this run together (see above), each with a Trainer of the same
  // config and options; it must outlive the Trainer. Null: this process alone.
  Communicator* communicator = nullptr;
};

struct TrainSummary {
  std::size_t steps = 0;       // the step the run ended at
  bool stopped_early = false;  // stop_at_seq_acc was reached
  EvalResult last_eval;
  std::optional<double> best_seq_acc;
  double elapsed_s = 0;  // the whole run's time, resumed parts included
  int stopped_by = 0;    // SIGINT or SIGTERM when a signal ended the run (last.safetensors saved)
};

class Trainer {
 public:
  // Locks out_dir (creating it), builds the task, model and optimizer; with
  // options.resume, restores them from the checkpoint. Throws std::runtime_error on a
  // folder another run holds, a missing or bad checkpoint, an existing run in out_dir
  // without resume, a run that would not fit in memory, another task than the
  // checkpoint's (without force), or a model whose shapes differ from the checkpoint's.
  Trainer(Config config, TrainerOptions options);
  ~Trainer();
  Trainer(const Trainer&) = delete;
  Trainer& operator=(const Trainer&) = delete;

  // Trains up to config.train.steps. Throws TrainingDiverged (see above).
  TrainSummary run();

  // One training step on a fresh batch; returns its loss. The building block of run(),
  // public for benchmarks. Throws TrainingDiverged before updating anything.
  double train_step();
  EvalResult evaluate();

  const Config& config() const { return config_; }
  const tasks::Task& task() const { return *task_; }
  layers::Transformer& model() { return *model_; }
  optim::Optimizer& optimizer() { return *optimizer_; }
  std::size_t step() const { return step_; }
  // Tokens (B·T input positions) in the last step's batch.
  std::size_t last_batch_tokens() const { return last_batch_tokens_; }

 private:
  std::string open_run();
  void build(const std::string& checkpoint_bytes);
  void check_ranks(const io::Checkpoint* checkpoint, const std::string& source);
  std::string path(const char* file) const;
  void print(const std::string& text) const;
  struct Session;
  void announce() const;  // writes config.yaml and prints it with the parameter count
  double elapsed(const Session& session) const;
  void log_step(Session& session, double loss, double seconds);
  void flush_window(Session& session);  // the train line of the steps since the last one
  bool evaluate_if_due(Session& session, double loss, TrainSummary& summary, bool& improved);
  void save_if_due(const Session& session, bool evaluated, bool improved, bool stopping);
  void restore(const io::Checkpoint& checkpoint, const std::string& source);
  void check_task_unchanged(const io::Checkpoint& checkpoint, const std::string& source);
  void save(const std::string& checkpoint_path, double elapsed_s) const;
  void stop_for_signal(Session& session, int signal, TrainSummary& summary);
  [[noreturn]] void diverged(double loss, double norm, const std::string& why) const;
  void check_parameters_after_step(double norm) const;
  std::string kept_checkpoint() const;

  Config config_;
  TrainerOptions options_;
  Communicator* comm_;  // options_.communicator, or this process alone
  std::unique_ptr<DataParallel> parallel_;  // with more than one rank
  EvalLabels eval_labels_;                  // of the whole held-out set, with parallel_
  std::size_t resumed_ranks_ = 1;           // the checkpoint's ranks, when resuming
  std::unique_ptr<RunLock> lock_;  // from construction, or run(), until run() returns
  std::unique_ptr<tasks::Task> task_;
  std::shared_ptr<layers::Transformer> model_;
  std::vector<core::NamedParameter> params_;
  std::unique_ptr<optim::Optimizer> optimizer_;
  core::Rng data_rng_;
  std::vector<tasks::Batch> eval_batches_;
  std::size_t step_ = 0;
  std::optional<double> best_seq_acc_;
  std::optional<std::size_t> last_saved_step_;  // of last.safetensors
  std::string resumed_from_yaml_;               // the checkpoint's config, when resuming
  std::optional<std::pair<std::string, std::string>> task_change_;  // --force: was, now
  double elapsed_before_ = 0;  // time of the run's earlier processes
  double last_grad_norm_ = 0;
  double last_lr_ = 0;  // the rate the last step used
  std::size_t last_batch_tokens_ = 0;
};

}  // namespace qkv::train
