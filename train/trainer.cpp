// The training loop, evaluation schedule, checkpoints and exact resume (see trainer.hpp).
#include "train/trainer.hpp"

#include <chrono>
#include <cmath>
#include <filesystem>

#include <fmt/format.h>

#include "core/allocator.hpp"
#include "core/blas.hpp"
#include "core/ops.hpp"
#include "optim/clip.hpp"
#include "io/atomic_file.hpp"
#include "io/checkpoint.hpp"
#include "train/metrics.hpp"
#include "train/progress.hpp"
#include "optim/factory.hpp"

namespace qkv::train {

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// Stream id of the training batches' generator (Rng(seed).split(data_stream)): apart from
// the initial weights' stream (Rng(seed) itself) and the evaluation examples'.
constexpr std::uint64_t kDataStream = 0x64617461;  // "data"

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// The index of the first non-finite value, or -1.
template <class T> std::ptrdiff_t first_non_finite(const T* values, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i)
    if (!std::isfinite(values[i])) return static_cast<std::ptrdiff_t>(i);
  return -1;
}

}  // namespace

Trainer::Trainer(Config config, TrainerOptions options)
    : config_(std::move(config)),
      options_(std::move(options)),
      data_rng_(core::Rng(config_.seed).split(kDataStream)) {
  core::tune_allocator();
  core::set_blas_threads(static_cast<int>(config_.train.threads));
  if (!options_.stop_at_seq_acc && config_.train.stop_at_seq_acc > 0)
    options_.stop_at_seq_acc = config_.train.stop_at_seq_acc;

  const std::string last = path("last.safetensors");
  std::optional<io::Checkpoint> checkpoint;
  if (options_.resume) {
    if (!fs::exists(last))
      throw std::runtime_error("cannot resume: '" + last + "' does not exist");
    checkpoint = io::load_checkpoint(last);
  } else if (fs::exists(last)) {
    throw std::runtime_error("'" + options_.out_dir +
                             "' already holds a run (last.safetensors): continue it with "
                             "--resume, or choose another folder with --out");
  }

  task_ = config_.make_task(checkpoint ? checkpoint->task_state : std::string());
  core::Rng init_rng(config_.seed);
  model_ = layers::build_model(config_.model, task_->vocab_size(), task_->max_seq_len(), init_rng);
  params_ = model_->named_parameters();
  optimizer_ = optim::make_optimizer(config_.optim, params_);
  eval_batches_ = make_eval_batches(
      *task_, task_->eval_examples(config_.train.eval_samples, config_.seed));
  if (checkpoint) restore(*checkpoint, last);
}

Trainer::~Trainer() = default;

std::string Trainer::path(const char* file) const {
  return (fs::path(options_.out_dir) / file).string();
}

void Trainer::print(const std::string& text) const {
  if (options_.out == nullptr) return;
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

void Trainer::save(const std::string& checkpoint_path, double elapsed_s) const {
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
  io::save_checkpoint(checkpoint_path, checkpoint);
}

void Trainer::diverged(double loss, double norm) const {
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
  const std::string kept =
      last_saved_step_ ? fmt::format("the last checkpoint ({}, step {}) is untouched",
                                     path("last.safetensors"), *last_saved_step_)
                       : std::string("no checkpoint had been written yet");
  // "nan" rather than the sign-carrying "-nan" some printers produce.
  const auto number = [](double x) { return std::isnan(x) ? std::string("nan") : fmt::format("{}", x); };
  throw TrainingDiverged(fmt::format(
      "training diverged at step {}: loss {}, gradient norm {}; first parameter with a "
      "non-finite gradient: {}. Stopped before the optimizer step; {}. Try a lower optim.lr "
      "or optim.clip_norm.",
      step_ + 1, number(loss), number(norm), culprit, kept));
}

double Trainer::train_step() {
  const tasks::Batch batch = task_->sample(config_.train.batch_size, data_rng_);
  last_batch_tokens_ = batch.inputs.values.size();

  optimizer_->zero_grad();
  const core::Tensor logits = model_->forward(batch.inputs);  // (B, T, V)
  const core::Tensor loss = core::cross_entropy(logits, batch.targets, batch.mask);
  const double loss_value = loss.item();
  loss.backward();  // also when the loss is not finite: the message names a parameter

  const optim::OptimizerOptions& optim = config_.optim;
  // The norm is taken before clipping; a non-finite one is returned without scaling.
  const double norm = optim.clip_norm > 0 ? optim::clip_grad_norm(params_, optim.clip_norm)
                                          : optim::grad_norm(params_);
  if (!std::isfinite(loss_value) || !std::isfinite(norm)) diverged(loss_value, norm);
  if (optim.clip_value > 0) optim::clip_grad_value(params_, optim.clip_value);
  optimizer_->step();
  ++step_;
  last_grad_norm_ = norm;
  return loss_value;
}

EvalResult Trainer::evaluate() { return train::evaluate(*model_, *task_, eval_batches_); }

// What one run() keeps between steps: where its lines go, and the window of steps since
// the last train line (its mean loss and measured speed).
struct Trainer::Session {
  MetricsLog metrics;
  std::unique_ptr<Progress> progress;
  Clock::time_point start = Clock::now();
  double window_loss = 0;
  std::size_t window_steps = 0;
  std::size_t window_tokens = 0;
  double window_seconds = 0;
  double tokens_per_s = 0;

  Session(const std::string& metrics_path, std::optional<std::size_t> resume_step)
      : metrics(metrics_path, resume_step) {}
};

void Trainer::announce() const {
  const std::string resolved = to_yaml(config_);
  io::write_file_atomically(path("config.yaml"), resolved);
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
  s.metrics.train({step_, s.window_loss / static_cast<double>(s.window_steps), last_lr_,
                   elapsed(s), last_grad_norm_, s.tokens_per_s});
  s.window_loss = 0;
  s.window_steps = 0;
  s.window_tokens = 0;
  s.window_seconds = 0;
}

// Evaluates when due; returns whether it did, and updates the best and the early stop.
bool Trainer::evaluate_if_due(Session& s, double loss, TrainSummary& summary, bool& improved) {
  improved = false;
  if (step_ % config_.train.eval_every != 0 && step_ != config_.train.steps) return false;
  summary.last_eval = evaluate();
  s.metrics.eval({step_, last_lr_, elapsed(s), summary.last_eval});
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
  fs::create_directories(options_.out_dir);
  announce();
  Session session(path("metrics.jsonl"),
                  options_.resume ? std::optional<std::size_t>(step_) : std::nullopt);
  if (options_.out != nullptr)
    session.progress = std::make_unique<Progress>(
        options_.out, options_.terminal.value_or(is_terminal(options_.out)), config_.train.steps,
        step_);

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
  }
  if (session.progress) session.progress->finish();

  summary.steps = step_;
  summary.best_seq_acc = best_seq_acc_;
  summary.elapsed_s = elapsed(session);
  print(fmt::format("# done: step {}, best eval seq_acc {}, {:.1f} s; checkpoints in {}\n", step_,
                    best_seq_acc_ ? fmt::format("{:.4f}", *best_seq_acc_) : "none",
                    summary.elapsed_s, options_.out_dir));
  return summary;
}

}  // namespace qkv::train
