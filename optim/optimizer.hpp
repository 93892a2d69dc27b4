// Optimizer: the base of SGD, Adam and AdamW. It owns parameter groups (each with its
// own learning rate and weight decay), an optional learning-rate schedule, the step
// count, and per-parameter state (moment buffers, update counts) that can be exported
// and imported by parameter name for checkpoints.
//
//   auto params = model.named_parameters();
//   OptimizerOptions options;              // optim/options.hpp: lr, betas, schedule, ...
//   options.lr = 3e-4;
//   options.weight_decay = 0.1;
//   AdamW optimizer(split_decay_groups(params), options);   // its schedule: options.schedule
//   for (...) {
//     optimizer.zero_grad();
//     loss.backward();
//     double norm = clip_grad_norm(params, 1.0);   // optim/clip.hpp
//     double lr = optimizer.lr();                   // the rate this step will use
//     optimizer.step();
//   }
//   OptimizerState state = optimizer.export_state();  // into the checkpoint
//   fresh.import_state(state);                        // exact resume
//
// A parameter whose gradient is undefined (backward never reached it since the last
// zero_grad) is skipped by step(): its values, moments and update count stay as they are,
// as in PyTorch. Steps write parameter values in place; no graph is recorded.
//
// Flat buffers: the optimizer moves its parameters' values, their gradients and its own
// state into one buffer each (core/flat.hpp), in group order, so that a step is one fused
// pass per group and the gradients are one span (for an allreduce across processes):
//
//   loss.backward();
//   core::Tensor grads = optimizer.flat_gradients();   // (N), every parameter's gradient
//   allreduce(grads.data<float>(), grads.numel());     // e.g. MPI, before the step
//   optimizer.step();
//
// A parameter's part holds its gradient only once backward reached it after zero_grad();
// a data-parallel step must reach every parameter on every process (the model's forward
// always does). Parameters of mixed dtypes are not packed (flat_gradients() is then
// undefined) and are updated one by one.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/parameter.hpp"
#include "core/tensor.hpp"
#include "optim/schedule.hpp"

namespace qkv::optim {

// Parameters that share a learning rate and weight decay. Unset values come from the
// optimizer's options (torch.optim's per-group defaults).
struct ParamGroup {
  std::vector<core::NamedParameter> params;
  std::optional<double> lr;
  std::optional<double> weight_decay;
};

// The nanoGPT convention: weight decay on the matrices of linear maps (ParamKind::weight)
// only, not on biases, norm gains or embeddings (unless decay_embeddings). Returns the
// decay group (weight decay from the options) then the no-decay group (weight decay 0),
// leaving out a group that would be empty.
std::vector<ParamGroup> split_decay_groups(const std::vector<core::NamedParameter>& params,
                                           bool decay_embeddings = false);

// Optimizer state in checkpoint-friendly form: tensors and plain numbers, keyed by
// parameter name. Keys:
//   tensors  "<param>.<buffer>"  e.g. "blocks.0.attn.wq.weight.exp_avg"
//   scalars  "<param>.step"      updates applied to that parameter
//            "step"              optimizer steps taken (the schedule position)
struct OptimizerState {
  std::map<std::string, core::Tensor> tensors;
  std::map<std::string, double> scalars;
};

// One parameter with its state.
struct ParamSlot {
  core::NamedParameter param;
  std::vector<core::Tensor> buffers;  // in buffer_names() order; the parameter's shape and dtype
  std::int64_t step = 0;              // updates applied, including the one being applied
  std::size_t offset = 0;             // of its part of the flat buffers, in elements
};

// What one pass of an update kernel covers: one parameter, or a whole group of them laid
// out one after another in the flat buffers, all at the same update count.
struct UpdateSpan {
  core::DType dtype = core::DType::f32;
  std::size_t count = 0;              // elements
  void* values = nullptr;
  void* grads = nullptr;
  std::array<void*, 2> buffers{};     // in buffer_names() order; unused ones null
  std::int64_t step = 0;              // updates applied, including this one
};

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  // One update of every parameter that has a gradient, at each group's rate times the
  // schedule's factor for the current step; then the step count advances.
  void step();
  // Drops every parameter's gradient (the next backward reallocates the ones it reaches).
  void zero_grad();

  const std::string& name() const { return name_; }  // "sgd", "adam", "adamw"
  std::size_t step_count() const { return step_count_; }

  std::size_t group_count() const { return groups_.size(); }
  double base_lr(std::size_t group = 0) const;
  // The rate the next step() uses for the group: base_lr * schedule factor.
  double lr(std::size_t group = 0) const;
  double weight_decay(std::size_t group = 0) const;
  void set_lr(double lr);                     // base rate of every group
  void set_lr(std::size_t group, double lr);  // base rate of one group

  void set_schedule(const Schedule& schedule) { schedule_ = schedule; }
  const Schedule& schedule() const { return schedule_; }

  // Every parameter, in group order.
  std::vector<core::NamedParameter> parameters() const;
  // Names of the per-parameter state tensors ("momentum_buffer"; "exp_avg", "exp_avg_sq").
  const std::vector<std::string>& buffer_names() const { return buffer_names_; }

  // The flat buffers (see the top of this file): every parameter's values and gradients,
  // in parameters() order, as 1-D tensors sharing their storage. Undefined when the
  // parameters' dtypes differ.
  const core::Tensor& flat_parameters() const { return flat_values_; }
  const core::Tensor& flat_gradients() const { return flat_grads_; }

  // A copy of the state (later steps do not change it).
  OptimizerState export_state() const;
  // Replaces the state. Every expected name must be present with the parameter's shape
  // and no other name may appear; otherwise std::invalid_argument names the tensor (and
  // both shapes) and nothing is changed.
  void import_state(const OptimizerState& state);

 protected:
  // `name` prefixes error messages; unset group values take default_lr and
  // default_weight_decay. Throws std::invalid_argument on no parameters, undefined or
  // repeated parameters, and negative group rates.
  Optimizer(std::string name, std::vector<ParamGroup> groups, double default_lr,
            double default_weight_decay, std::vector<std::string> buffer_names);

  // Applies one update to the span's values from its gradients: one fused pass over the
  // values, gradients and buffers. span.step already counts this update.
  virtual void update(const UpdateSpan& span, double lr, double weight_decay) = 0;

 private:
  struct Group {
    double lr;
    double weight_decay;
    std::vector<ParamSlot> slots;
  };

  void pack();
  bool packed_as_one(const Group& group) const;
  UpdateSpan span_of(const Group& group) const;
  UpdateSpan span_of(ParamSlot& slot) const;

  std::string name_;
  std::vector<std::string> buffer_names_;
  std::vector<Group> groups_;
  Schedule schedule_;
  std::size_t step_count_ = 0;
  core::Tensor flat_values_, flat_grads_;
  std::vector<core::Tensor> flat_buffers_;  // in buffer_names() order
};

}  // namespace qkv::optim
