// The training loop, evaluation schedule, checkpoints and exact resume (see trainer.hpp).
#include "train/trainer.hpp"

#include <chrono>
#include <algorithm>
#include <cmath>
#include <filesystem>

#include <fmt/format.h>

#include "core/allocator.hpp"
#include "core/blas.hpp"
#include "core/buffer_pool.hpp"
#include "core/ops.hpp"
#include "core/parallel.hpp"
#include "optim/clip.hpp"
#include "io/atomic_file.hpp"
#include "io/checkpoint.hpp"
#include "strict_yaml/config_writer.hpp"
#include "train/data_parallel.hpp"
#include "train/metrics.hpp"
#include "train/progress.hpp"
#include "train/resources.hpp"
#include "train/stop_signals.hpp"
#include "optim/factory.hpp"

namespace qkv::train {

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// Stream id of the training batches' generator (Rng(seed).split(data_stream)): apart from
// the initial weights' stream (Rng(seed) itself) and the evaluation examples'.
constexpr std::uint64_t kDataStream = 0x64617461;  // "data"

// A finite loss over this many times ln(V) is divergence: uniform guessing scores ln(V),
// and no model that is learning is 100 times worse than that (a loss of 5e12 passed).
constexpr double kDivergedLossFactor = 100;

// The task section as the config resolves it, the form both sides of a resume compare.
std::string task_yaml(const Config& config) {
  ConfigWriter out;
  out.set_section("task", config.task);
  return out.str();
}

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// This rank's contiguous share of the held-out examples (every rank made them all).
std::vector<tasks::Example> rank_share(const std::vector<tasks::Example>& examples,
                                       const Communicator& communicator) {
  const std::size_t n = examples.size(), r = communicator.rank(), N = communicator.size();
  return {examples.begin() + static_cast<std::ptrdiff_t>(r * n / N),
          examples.begin() + static_cast<std::ptrdiff_t>((r + 1) * n / N)};
}

Communicator& single_process() {
  static SingleProcess alone;
  return alone;
}

// The index of the first non-finite value, or -1. Every step checks every parameter, so
// the common case is one vectorized pass with no exit: the sum of value * 0 is 0 unless
// some value is infinite or NaN (inf * 0 is NaN), in whatever order it is summed. Only a
// non-finite tensor is searched element by element.
template <class T> std::ptrdiff_t first_non_finite(const T* values, std::size_t n) {
  T zeros = 0;
#pragma omp simd reduction(+ : zeros)
  for (std::size_t i = 0; i < n; ++i) zeros += values[i] * T(0);
  if (zeros == 0) return -1;
  for (std::size_t i = 0; i < n; ++i)
    if (!std::isfinite(values[i])) return static_cast<std::ptrdiff_t>(i);
  return -1;
}

}  // namespace

Trainer::Trainer(Config config, TrainerOptions options)
    : config_(std::move(config)),
      options_(std::move(options)),
      comm_(options_.communicator != nullptr ? options_.communicator : &single_process()),
      data_rng_(core::Rng(config_.seed).split(kDataStream)) {
  core::tune_allocator();
  // train.threads are core's pool (run() below): it splits large gemms itself, so OpenBLAS
  // stays on one thread and the two never compete for the cores.
  core::set_blas_threads(1);
  if (!options_.stop_at_seq_acc && config_.train.stop_at_seq_acc > 0)
    options_.stop_at_seq_acc = config_.train.stop_at_seq_acc;
  // Rank 0 alone holds the run folder, and sends the others its checkpoint; each part ends
  // in an agreement, so that a rank's error stops every rank with its message.
  std::string checkpoint_bytes;
  comm_->agree(attempt([&] { checkpoint_bytes = open_run(); }));
  if (options_.resume && comm_->size() > 1) comm_->broadcast(checkpoint_bytes);
  comm_->agree(attempt([&] { build(checkpoint_bytes); }));
}

// Locks the folder (before anything in it is read: another run writing it would change
// it) and returns its checkpoint's bytes when resuming; on rank 0 only.
std::string Trainer::open_run() {
  if (comm_->rank() != 0) return "";
  fs::create_directories(options_.out_dir);
  lock_ = std::make_unique<RunLock>(options_.out_dir);
  const std::string last = path("last.safetensors");
  if (options_.resume) {
    if (!fs::exists(last))
      throw std::runtime_error("cannot resume: '" + last + "' does not exist");
    return io::read_file(last);
  }
  if (fs::exists(last))
    throw std::runtime_error("'" + options_.out_dir +
                             "' already holds a run (last.safetensors): continue it with "
                             "--resume, or choose another folder with --out");
  return "";
}

void Trainer::build(const std::string& checkpoint_bytes) {
  const std::string last = path("last.safetensors");
  std::optional<io::Checkpoint> checkpoint;
  if (options_.resume)
    checkpoint = io::decode_checkpoint(checkpoint_bytes, last,
                                       comm_->rank() == 0 ? stderr : nullptr);
  task_ = config_.make_task(checkpoint ? checkpoint->task_state : std::string());
  if (checkpoint) check_task_unchanged(*checkpoint, last);
  check_ranks(checkpoint ? &*checkpoint : nullptr, last);
  // This rank's memory: its rows of the global batch (check_ranks: they divide it).
  const std::size_t global_batch = config_.train.batch_size;
  config_.train.batch_size = global_batch / comm_->size();
  const MemoryEstimate need = estimate_memory(config_, task_->vocab_size(), task_->max_seq_len(),
                                              /*training=*/true);
  config_.train.batch_size = global_batch;
  check_memory(need);
  core::Rng init_rng(config_.seed);
  model_ = layers::build_model(config_.model, task_->vocab_size(), task_->max_seq_len(), init_rng);
  params_ = model_->named_parameters();
  optimizer_ = optim::make_optimizer(config_.optim, params_);
  const std::vector<tasks::Example> examples =
      task_->eval_examples(config_.train.eval_samples, config_.seed);
  eval_batches_ = make_eval_batches(*task_, rank_share(examples, *comm_));
  if (comm_->size() > 1) {
    eval_labels_ = eval_labels(examples);
    parallel_ = std::make_unique<DataParallel>(*comm_, params_, optimizer_->flat_gradients());
  }
  if (checkpoint) restore(*checkpoint, last);
  if (task_change_) best_seq_acc_.reset();
}

// Data-parallel training's conditions: the global batch splits evenly, no dropout, and a
// run resumed on another number of ranks keeps its global batch.
void Trainer::check_ranks(const io::Checkpoint* checkpoint, const std::string& source) {
  const std::size_t ranks = comm_->size(), batch = config_.train.batch_size;
  if (ranks > 1) {
    rank_rows(batch, comm_->rank(), ranks);
    if (config_.model.dropout > 0)
      throw std::runtime_error(fmt::format(
          "model.dropout {} on {} ranks: data-parallel training does not draw dropout masks "
          "as one process would, so it runs without dropout only (set model.dropout=0)",
          config_.model.dropout, ranks));
  }
  if (checkpoint == nullptr) return;
  resumed_ranks_ = checkpoint->ranks;
  if (checkpoint->ranks == ranks) return;
  std::size_t was_batch = checkpoint->ranks * checkpoint->rank_batch;
  if (checkpoint->rank_batch == 0)  // written before qkv recorded it: its config's
    was_batch = parse_checkpoint_config(checkpoint->config_yaml, source + " (its config)",
                                        checkpoint->task_state).train.batch_size;
  if (was_batch != batch)
    throw std::runtime_error(fmt::format(
        "cannot resume from '{}': the run was trained on {} rank(s) with global batch {} "
        "({} rows each), and this job has {} rank(s) with train.batch_size {}. On another "
        "number of ranks a run continues exactly only with the same global batch: set "
        "train.batch_size={}, or resume on {} rank(s)",
        source, checkpoint->ranks, was_batch, was_batch / checkpoint->ranks, ranks, batch,
        was_batch, checkpoint->ranks));
}

Trainer::~Trainer() = default;

std::string Trainer::path(const char* file) const {
  return (fs::path(options_.out_dir) / file).string();
}

void Trainer::print(const std::string& text) const {
  if (options_.out == nullptr || comm_->rank() != 0) return;
  std::fputs(text.c_str(), options_.out);
  std::fflush(options_.out);
}

void Trainer::restore(const io::Checkpoint& checkpoint, const std::string& source) {
  const std::string context = "cannot resume from '" + source + "': ";
  if (checkpoint.optimizer_name != optimizer_->name())
    throw std::runtime_error(context + "its optimizer is " + checkpoint.optimizer_name +
                             ", the config's is " + optimizer_->name());
  for (const char* role : {"data", "dropout"})
    if (checkpoint.rng_states.count(role) == 0)
      throw std::runtime_error(context + "it has no '" + role + "' RNG state");
  try {
    model_->load_state(checkpoint.weights);
    optimizer_->import_state(checkpoint.optimizer);
    data_rng_.set_state(checkpoint.rng_states.at("data"));
    model_->dropout_rng().set_state(checkpoint.rng_states.at("dropout"));
  } catch (const std::invalid_argument& error) {
    throw std::runtime_error(context + error.what());
  }
  step_ = checkpoint.step;
  best_seq_acc_ = checkpoint.best_seq_acc;
  elapsed_before_ = checkpoint.elapsed_s;
  last_saved_step_ = checkpoint.step;
  resumed_from_yaml_ = checkpoint.config_yaml;
}

void Trainer::check_task_unchanged(const io::Checkpoint& checkpoint, const std::string& source) {
  const std::string context = "cannot resume from '" + source + "': ";
  const std::string now = task_yaml(config_);
  std::string was;
  try {
    was = task_yaml(parse_checkpoint_config(checkpoint.config_yaml, source + " (its config)",
                                            checkpoint.task_state));
  } catch (const std::exception& error) {
    if (!options_.force)
      throw std::runtime_error(context + "its saved config does not read, so its task cannot be "
                               "compared with this config's (" + std::string(error.what()) +
                               "); --force resumes anyway");
    was = std::string("(a saved config that does not read: ") + error.what() + ")\n";
  }
  if (was == now) return;
  if (!options_.force)
    throw std::runtime_error(
        context + "the run's task differs from this config's (" +
        first_difference(was, now, "config") +
        "): resuming would train another task into this run. Add --force to change the task on "
        "purpose (recorded in metrics.jsonl), or train into another folder with --out");
  task_change_ = std::make_pair(was, now);
}

namespace {

// A checkpoint's copies of the weights and optimizer state have other sizes than
// training's buffers: the pool's free buffers go back to the system allocator when it
// starts, so that the copies are made in training's memory instead of adding to the
// process, and when it ends, so that the next step is served from the copies'. An
// evaluation runs on the pool as it is: its batches are training's shapes or smaller, and
// a trim before it let glibc place some of its buffers past the freed ones (medium: +8 MiB).
struct PoolPhase {
  PoolPhase() { core::pool_trim(); }
  ~PoolPhase() { core::pool_trim(); }
  PoolPhase(const PoolPhase&) = delete;
  PoolPhase& operator=(const PoolPhase&) = delete;
};

}  // namespace

void Trainer::save(const std::string& checkpoint_path, double elapsed_s) const {
  if (comm_->rank() != 0) return;  // the weights are every rank's
  const PoolPhase phase;  // made first: it ends after the checkpoint's copies are gone
  io::Checkpoint checkpoint;
  checkpoint.weights = model_->state();
  checkpoint.optimizer_name = optimizer_->name();
  checkpoint.optimizer = optimizer_->export_state();
  checkpoint.step = step_;
  checkpoint.rng_states["data"] = data_rng_.state();
  checkpoint.rng_states["dropout"] = model_->dropout_rng().state();
  checkpoint.config_yaml = to_yaml(config_);
  checkpoint.task_state = task_->state();
  checkpoint.vocabulary = task_->token_names();
  checkpoint.best_seq_acc = best_seq_acc_;
  checkpoint.elapsed_s = elapsed_s;
  checkpoint.ranks = comm_->size();
  checkpoint.rank_batch = config_.train.batch_size / comm_->size();
  io::save_checkpoint(checkpoint_path, checkpoint);
}

std::string Trainer::kept_checkpoint() const {
  return last_saved_step_ ? fmt::format("the last checkpoint ({}, step {}) is untouched",
                                        path("last.safetensors"), *last_saved_step_)
                          : std::string("no checkpoint had been written yet");
}

void Trainer::diverged(double loss, double norm, const std::string& why) const {
  std::string culprit = "none (only the loss)";
  for (const core::NamedParameter& param : params_) {
    const core::Tensor grad = param.tensor.grad();
    if (!grad.defined()) continue;
    const std::ptrdiff_t at = grad.dtype() == core::DType::f32
                                  ? first_non_finite(grad.data<float>(), grad.numel())
                                  : first_non_finite(grad.data<double>(), grad.numel());
    if (at >= 0) {
      culprit = fmt::format("{} (element {})", param.name, at);
      break;
    }
  }
  // "nan" rather than the sign-carrying "-nan" some printers produce.
  const auto number = [](double x) { return std::isnan(x) ? std::string("nan") : fmt::format("{}", x); };
  const std::string cause =
      why.empty() ? "first parameter with a non-finite gradient: " + culprit : why;
  throw TrainingDiverged(fmt::format(
      "training diverged at step {}: loss {}, gradient norm {}; {}. Stopped before the "
      "optimizer step; {}. Try a lower optim.lr or optim.clip_norm.",
      step_ + 1, number(loss), number(norm), cause, kept_checkpoint()));
}

// Finite gradients, then a non-finite weight: the optimizer's own numbers are broken (a
// moment edited in a checkpoint, an option that divides by zero), not the learning rate.
void Trainer::check_parameters_after_step(double norm) const {
  for (const core::NamedParameter& param : params_) {
    const core::Tensor& t = param.tensor;
    const std::ptrdiff_t at = t.dtype() == core::DType::f32
                                  ? first_non_finite(t.data<float>(), t.numel())
                                  : first_non_finite(t.data<double>(), t.numel());
    if (at < 0) continue;
    throw TrainingDiverged(fmt::format(
        "the optimizer ({}) made parameter {} non-finite (element {}) at step {}, from finite "
        "gradients (norm {}): its state is corrupt (moments out of the range training reaches, "
        "e.g. a checkpoint's edited) or one of its options divides by zero; this is not a "
        "learning rate to lower. Nothing was saved; {}.",
        optimizer_->name(), param.name, at, step_ + 1, norm, kept_checkpoint()));
  }
}

double Trainer::train_step() {
  tasks::Batch batch = task_->sample(config_.train.batch_size, data_rng_);
  last_batch_tokens_ = batch.inputs.values.size();
  if (parallel_) batch = parallel_->shard(batch);

  optimizer_->zero_grad();
  const core::Tensor logits = model_->forward(batch.inputs);  // (B, T, V)
  const core::Tensor loss = core::cross_entropy(logits, batch.targets, batch.mask);
  double loss_value = loss.item();
  loss.backward();  // also when the loss is not finite: the message names a parameter
  if (parallel_) loss_value = parallel_->reduce(loss_value);

  const optim::OptimizerOptions& optim = config_.optim;
  // The norm is taken before clipping; a non-finite one is returned without scaling.
  const double norm = optim.clip_norm > 0 ? optim::clip_grad_norm(params_, optim.clip_norm)
                                          : optim::grad_norm(params_);
  if (!std::isfinite(loss_value) || !std::isfinite(norm)) diverged(loss_value, norm, "");
  const double uniform = std::log(static_cast<double>(task_->vocab_size()));
  const double bound = kDivergedLossFactor * std::max(1.0, uniform);
  if (loss_value > bound)
    diverged(loss_value, norm,
             fmt::format("the loss is over {} x ln(V) = {:.4g} (a model guessing uniformly "
                         "scores ln(V) = {:.4g})",
                         kDivergedLossFactor, bound, uniform));
  if (optim.clip_value > 0) optim::clip_grad_value(params_, optim.clip_value);
  optimizer_->step();
  check_parameters_after_step(norm);
  ++step_;
  last_grad_norm_ = norm;
  return loss_value;
}

EvalResult Trainer::evaluate() {
  return parallel_ ? train::evaluate(*model_, *task_, eval_batches_, *comm_, eval_labels_)
                   : train::evaluate(*model_, *task_, eval_batches_);
}

// What one run() keeps between steps: where its lines go (rank 0's metrics.jsonl), and the
// window of steps since the last train line (its mean loss and measured speed).
struct Trainer::Session {
  std::optional<MetricsLog> metrics;
  std::unique_ptr<Progress> progress;
  Clock::time_point start = Clock::now();
  double window_loss = 0;
  std::size_t window_steps = 0;
  std::size_t window_tokens = 0;
  double window_seconds = 0;
  double tokens_per_s = 0;

  Session(const std::string& metrics_path, std::optional<std::size_t> resume_step, bool writes) {
    if (writes) metrics.emplace(metrics_path, resume_step);
  }
};

void Trainer::announce() const {
  const std::string resolved = to_yaml(config_);
  if (comm_->rank() == 0) io::write_file_atomically(path("config.yaml"), resolved);
  print("# resolved config\n" + resolved);
  // "N parameters (M in attention)": the learned counts an ablation compares; frozen
  // matrices are saved but not trained, so they are counted apart.
  const std::size_t frozen = model_->buffer_count();
  print(fmt::format("# model: {} parameters ({} in attention){}\n", model_->parameter_count(),
                    model_->attention_parameter_count(),
                    frozen > 0 ? fmt::format(", {} frozen", frozen) : std::string()));
  if (options_.resume) {
    print(fmt::format("# resuming from {} at step {}\n", path("last.safetensors"), step_));
    if (resumed_from_yaml_ != resolved)
      print("# note: this config differs from the checkpoint's; continuing with this one\n");
    if (resumed_ranks_ != comm_->size())
      print(fmt::format("# note: trained on {} rank(s) until now, continuing on {} with the same "
                        "global batch ({}): the same training up to float round-off\n",
                        resumed_ranks_, comm_->size(), config_.train.batch_size));
  }
  if (step_ >= config_.train.steps)
    print(fmt::format("# the run is already at step {} of {}: nothing to train\n", step_,
                      config_.train.steps));
}

double Trainer::elapsed(const Session& session) const {
  return elapsed_before_ + seconds_since(session.start);
}

void Trainer::log_step(Session& s, double loss, double seconds) {
  s.window_seconds += seconds;
  s.window_loss += loss;
  s.window_steps += 1;
  s.window_tokens += last_batch_tokens_;
  s.tokens_per_s =
      s.window_seconds > 0 ? static_cast<double>(s.window_tokens) / s.window_seconds : 0;
  if (s.progress) s.progress->update(step_, loss, s.tokens_per_s);
  if (step_ % config_.train.log_every != 0 && step_ != config_.train.steps) return;
  flush_window(s);
}

void Trainer::flush_window(Session& s) {
  if (s.metrics) s.metrics->train({step_, s.window_loss / static_cast<double>(s.window_steps), last_lr_,
                   elapsed(s), last_grad_norm_, s.tokens_per_s});
  s.window_loss = 0;
  s.window_steps = 0;
  s.window_tokens = 0;
  s.window_seconds = 0;
}

// The steps since the last train line are reported (as one line at this step) and the
// run is saved where it stands, so that --resume continues from this very step.
void Trainer::stop_for_signal(Session& s, int signal, TrainSummary& summary) {
  if (s.window_steps > 0) flush_window(s);
  if (last_saved_step_ != step_) {
    save(path("last.safetensors"), elapsed(s));
    last_saved_step_ = step_;
  }
  summary.stopped_by = signal;
}

// Evaluates when due; returns whether it did, and updates the best and the early stop.
bool Trainer::evaluate_if_due(Session& s, double loss, TrainSummary& summary, bool& improved) {
  improved = false;
  if (step_ % config_.train.eval_every != 0 && step_ != config_.train.steps) return false;
  summary.last_eval = evaluate();
  if (s.metrics) s.metrics->eval({step_, last_lr_, elapsed(s), summary.last_eval});
  if (s.progress) s.progress->evaluated(step_, loss, s.tokens_per_s, summary.last_eval);
  improved = !best_seq_acc_ || summary.last_eval.seq_acc > *best_seq_acc_;
  if (improved) best_seq_acc_ = summary.last_eval.seq_acc;
  summary.stopped_early =
      options_.stop_at_seq_acc && summary.last_eval.seq_acc >= *options_.stop_at_seq_acc;
  return true;
}

void Trainer::save_if_due(const Session& s, bool evaluated, bool improved, bool stopping) {
  const TrainConfig& train = config_.train;
  const bool due = train.checkpoint_every > 0 ? step_ % train.checkpoint_every == 0 : evaluated;
  if (due || step_ == train.steps || stopping) {
    save(path("last.safetensors"), elapsed(s));
    last_saved_step_ = step_;
  }
  if (improved) save(path("best.safetensors"), elapsed(s));
}

TrainSummary Trainer::run() {
  const bool root = comm_->rank() == 0;
  if (root) fs::create_directories(options_.out_dir);
  // The lock taken at construction, or again for a later run(); released when this one
  // returns (a finished Trainer in a program does not keep the folder from the next one).
  if (!lock_ && root) lock_ = std::make_unique<RunLock>(options_.out_dir);
  struct Release {
    std::unique_ptr<RunLock>& lock;
    ~Release() { lock.reset(); }
  } release{lock_};
  announce();
  Session session(path("metrics.jsonl"),
                  options_.resume ? std::optional<std::size_t>(step_) : std::nullopt, root);
  if (task_change_) {
    if (session.metrics) session.metrics->note(step_, "resumed with --force: the task changed; the best eval "
                                "seq_acc so far was forgotten",
                         {{"was", task_change_->first}, {"now", task_change_->second}});
    print("# note: --force: the task differs from the run's; continuing with this one (noted "
          "in metrics.jsonl), and best.safetensors will be replaced at the next evaluation\n");
  }
  // Installed for the loop only: a signal before or after it ends the process as usual.
  std::optional<StopSignals> signals;
  if (options_.stop_on_signals) signals.emplace();
  if (options_.out != nullptr)
    session.progress = std::make_unique<Progress>(
        options_.out, options_.terminal.value_or(is_terminal(options_.out)), config_.train.steps,
        step_);

  const core::ParallelScope parallel(config_.train.threads);
  TrainSummary summary;
  while (step_ < config_.train.steps) {
    const Clock::time_point step_start = Clock::now();
    last_lr_ = optimizer_->lr();
    double loss = NAN;
    try {
      loss = train_step();
    } catch (...) {
      if (session.progress) session.progress->finish();  // the error then starts a line
      throw;
    }
    log_step(session, loss, seconds_since(step_start));
    if (options_.on_step) options_.on_step(step_);
    bool improved = false;
    const bool evaluated = evaluate_if_due(session, loss, summary, improved);
    save_if_due(session, evaluated, improved, summary.stopped_early);
    if (summary.stopped_early) {
      if (session.progress)
        session.progress->message(fmt::format("# eval seq_acc {:.4f} reached the target {} at step {}",
                                              summary.last_eval.seq_acc,
                                              *options_.stop_at_seq_acc, step_));
      break;
    }
    // With several ranks, every rank stops after the same step or none does.
    const int stop = signals ? signals->pending() : 0;
    if (const int agreed = parallel_ ? agree_on_signal(*comm_, stop) : stop; agreed != 0) {
      stop_for_signal(session, agreed, summary);
      break;
    }
  }
  if (session.progress) session.progress->finish();

  summary.steps = step_;
  summary.best_seq_acc = best_seq_acc_;
  summary.elapsed_s = elapsed(session);
  if (summary.stopped_by != 0) {
    print(fmt::format("# stopped by {} after step {} of {}: saved {}\n",
                      StopSignals::name(summary.stopped_by), step_, config_.train.steps,
                      path("last.safetensors")));
    return summary;
  }
  print(fmt::format("# done: step {}, best eval seq_acc {}, {:.1f} s; checkpoints in {}\n", step_,
                    best_seq_acc_ ? fmt::format("{:.4f}", *best_seq_acc_) : "none",
                    summary.elapsed_s, options_.out_dir));
  return summary;
}

}  // namespace qkv::train
