// Optimizer base: parameter groups, the step loop, and state export/import by name.
#include "optim/optimizer.hpp"

#include <algorithm>
#include <cmath>
#include <set>
#include <sstream>
#include <stdexcept>
#include <utility>

#include "core/flat.hpp"
#include "core/ops.hpp"
#include "optim/option_check.hpp"

namespace qkv::optim {

using core::NamedParameter;
using core::ParamKind;
using core::Tensor;

std::vector<ParamGroup> split_decay_groups(const std::vector<NamedParameter>& params,
                                           bool decay_embeddings) {
  ParamGroup decay;
  ParamGroup no_decay;
  no_decay.weight_decay = 0.0;
  for (const NamedParameter& p : params) {
    const bool decayed = p.kind == ParamKind::weight ||
                         (decay_embeddings && p.kind == ParamKind::embedding);
    (decayed ? decay : no_decay).params.push_back(p);
  }
  std::vector<ParamGroup> groups;
  if (!decay.params.empty()) groups.push_back(std::move(decay));
  if (!no_decay.params.empty()) groups.push_back(std::move(no_decay));
  return groups;
}

Optimizer::Optimizer(std::string name, std::vector<ParamGroup> groups, double default_lr,
                     double default_weight_decay, std::vector<std::string> buffer_names)
    : name_(std::move(name)), buffer_names_(std::move(buffer_names)) {
  std::set<std::string> names;
  std::map<const void*, std::string> nodes;  // Tensor::id(): to catch one tensor under two names
  for (std::size_t g = 0; g < groups.size(); ++g) {
    ParamGroup& input = groups[g];
    Group group;
    group.lr = input.lr.value_or(default_lr);
    group.weight_decay = input.weight_decay.value_or(default_weight_decay);
    const std::string who = name_ + " parameter group " + std::to_string(g);
    detail::check_option(std::isfinite(group.lr) && group.lr >= 0, who, "lr", group.lr,
                         "a finite value >= 0");
    detail::check_option(std::isfinite(group.weight_decay) && group.weight_decay >= 0, who,
                         "weight_decay", group.weight_decay, "a finite value >= 0");
    for (NamedParameter& p : input.params) {
      if (!p.tensor.defined()) {
        throw std::invalid_argument(name_ + ": parameter '" + p.name + "' is an undefined tensor");
      }
      if (!names.insert(p.name).second) {
        throw std::invalid_argument(name_ + ": parameter '" + p.name +
                                    "' is given more than once");
      }
      auto seen = nodes.emplace(p.tensor.id(), p.name);
      if (!seen.second) {
        throw std::invalid_argument(name_ + ": parameters '" + seen.first->second + "' and '" +
                                    p.name + "' are the same tensor");
      }
      ParamSlot slot;
      slot.param = std::move(p);
      group.slots.push_back(std::move(slot));
    }
    groups_.push_back(std::move(group));
  }
  if (names.empty()) throw std::invalid_argument(name_ + ": got no parameters to optimize");
  if (buffer_names_.size() > UpdateSpan{}.buffers.size())
    throw std::logic_error(name_ + ": more state buffers than an UpdateSpan holds");
  pack();
}

// Values, gradients and each state buffer into one buffer apiece, in group order; with
// mixed dtypes, every parameter keeps its own buffers.
void Optimizer::pack() {
  std::vector<Tensor> tensors;
  for (Group& group : groups_)
    for (ParamSlot& slot : group.slots) tensors.push_back(slot.param.tensor);
  const bool one_dtype = std::all_of(tensors.begin(), tensors.end(), [&](const Tensor& t) {
    return t.dtype() == tensors[0].dtype();
  });
  if (!one_dtype) {
    for (Group& group : groups_)
      for (ParamSlot& slot : group.slots)
        for (std::size_t b = 0; b < buffer_names_.size(); ++b)
          slot.buffers.push_back(Tensor::zeros(slot.param.tensor.shape(), slot.param.tensor.dtype()));
    return;
  }
  flat_values_ = core::pack_values(tensors);
  flat_grads_ = core::pack_gradients(tensors);
  for (std::size_t b = 0; b < buffer_names_.size(); ++b)
    flat_buffers_.push_back(Tensor::zeros(flat_values_.shape(), flat_values_.dtype()));
  std::size_t offset = 0;
  for (Group& group : groups_) {
    for (ParamSlot& slot : group.slots) {
      slot.offset = offset;
      for (const Tensor& flat : flat_buffers_) {
        const Tensor part = core::flat_part(flat, offset, slot.param.tensor.numel());
        slot.buffers.push_back(core::reshape(part, slot.param.tensor.shape()));
      }
      offset += slot.param.tensor.numel();
    }
  }
}

namespace {
const void* values_of(const Tensor& t) {
  return t.dtype() == core::DType::f32 ? static_cast<const void*>(t.data<float>())
                                       : static_cast<const void*>(t.data<double>());
}
const void* element(const Tensor& flat, std::size_t offset) {
  const std::size_t size = flat.dtype() == core::DType::f32 ? sizeof(float) : sizeof(double);
  return static_cast<const char*>(values_of(flat)) + offset * size;
}
}  // namespace

// Whether the group can be one span: every parameter has a gradient, its values and
// gradient still sit in the flat buffers (convert_ or another optimizer may have moved
// them) and all are at the same update count.
bool Optimizer::packed_as_one(const Group& group) const {
  if (!flat_values_.defined() || group.slots.empty()) return false;
  for (const ParamSlot& slot : group.slots) {
    const Tensor& t = slot.param.tensor;
    const Tensor grad = t.grad();
    if (!grad.defined() || slot.step != group.slots[0].step || t.dtype() != flat_values_.dtype() ||
        values_of(t) != element(flat_values_, slot.offset) ||
        values_of(grad) != element(flat_grads_, slot.offset))
      return false;
  }
  return true;
}

UpdateSpan Optimizer::span_of(const Group& group) const {
  const ParamSlot& first = group.slots.front();
  const ParamSlot& last = group.slots.back();
  UpdateSpan span;
  span.dtype = flat_values_.dtype();
  span.count = last.offset + last.param.tensor.numel() - first.offset;
  span.values = const_cast<void*>(element(flat_values_, first.offset));
  span.grads = const_cast<void*>(element(flat_grads_, first.offset));
  for (std::size_t b = 0; b < flat_buffers_.size(); ++b)
    span.buffers[b] = const_cast<void*>(element(flat_buffers_[b], first.offset));
  span.step = first.step;
  return span;
}

UpdateSpan Optimizer::span_of(ParamSlot& slot) const {
  const Tensor& t = slot.param.tensor;
  UpdateSpan span;
  span.dtype = t.dtype();
  span.count = t.numel();
  span.values = const_cast<void*>(values_of(t));
  span.grads = const_cast<void*>(values_of(t.grad()));
  for (std::size_t b = 0; b < slot.buffers.size(); ++b)
    span.buffers[b] = const_cast<void*>(values_of(slot.buffers[b]));
  span.step = slot.step;
  return span;
}

void Optimizer::step() {
  const double factor = schedule_.multiplier(step_count_);
  for (Group& group : groups_) {
    const double lr = group.lr * factor;
    if (packed_as_one(group)) {
      for (ParamSlot& slot : group.slots) ++slot.step;
      update(span_of(group), lr, group.weight_decay);
      continue;
    }
    for (ParamSlot& slot : group.slots) {
      if (!slot.param.tensor.grad().defined()) continue;
      ++slot.step;
      update(span_of(slot), lr, group.weight_decay);
    }
  }
  ++step_count_;
}

void Optimizer::zero_grad() {
  for (Group& group : groups_) {
    for (ParamSlot& slot : group.slots) slot.param.tensor.zero_grad();
  }
}

namespace {
void check_group(const std::string& who, std::size_t group, std::size_t count) {
  if (group >= count) {
    throw std::out_of_range(who + ": parameter group " + std::to_string(group) +
                            " does not exist (there are " + std::to_string(count) + ")");
  }
}
}  // namespace

double Optimizer::base_lr(std::size_t group) const {
  check_group(name_, group, groups_.size());
  return groups_[group].lr;
}

double Optimizer::lr(std::size_t group) const {
  return base_lr(group) * schedule_.multiplier(step_count_);
}

double Optimizer::weight_decay(std::size_t group) const {
  check_group(name_, group, groups_.size());
  return groups_[group].weight_decay;
}

void Optimizer::set_lr(double lr) {
  for (std::size_t g = 0; g < groups_.size(); ++g) set_lr(g, lr);
}

void Optimizer::set_lr(std::size_t group, double lr) {
  check_group(name_, group, groups_.size());
  detail::check_option(std::isfinite(lr) && lr >= 0, name_, "lr", lr, "a finite value >= 0");
  groups_[group].lr = lr;
}

std::vector<NamedParameter> Optimizer::parameters() const {
  std::vector<NamedParameter> params;
  for (const Group& group : groups_) {
    for (const ParamSlot& slot : group.slots) params.push_back(slot.param);
  }
  return params;
}

OptimizerState Optimizer::export_state() const {
  OptimizerState state;
  state.scalars["step"] = static_cast<double>(step_count_);
  for (const Group& group : groups_) {
    for (const ParamSlot& slot : group.slots) {
      state.scalars[slot.param.name + ".step"] = static_cast<double>(slot.step);
      for (std::size_t b = 0; b < buffer_names_.size(); ++b) {
        state.tensors[slot.param.name + "." + buffer_names_[b]] = slot.buffers[b].clone();
      }
    }
  }
  return state;
}

namespace {
// Step counts travel as doubles (checkpoint metadata is numbers); they must be whole.
std::int64_t step_from(const std::string& who, const std::string& key, double value) {
  if (!(value >= 0) || value != std::floor(value) || value > 9007199254740992.0) {
    std::ostringstream message;
    message << who << " state scalar '" << key << "' = " << value
            << " is not a step count (expected a whole number >= 0)";
    throw std::invalid_argument(message.str());
  }
  return static_cast<std::int64_t>(value);
}
}  // namespace

void Optimizer::import_state(const OptimizerState& state) {
  const std::string who = name_ + " optimizer";
  const std::string hint = " (was the state saved for another optimizer type or model?)";
  // Validate everything first, so that a bad state changes nothing.
  std::set<std::string> expected_tensors;
  std::set<std::string> expected_scalars = {"step"};
  auto find_scalar = [&](const std::string& key) {
    auto it = state.scalars.find(key);
    if (it == state.scalars.end()) {
      throw std::invalid_argument(who + " state is missing scalar '" + key + "'" + hint);
    }
    return step_from(who, key, it->second);
  };
  find_scalar("step");
  for (const Group& group : groups_) {
    for (const ParamSlot& slot : group.slots) {
      expected_scalars.insert(slot.param.name + ".step");
      find_scalar(slot.param.name + ".step");
      for (const std::string& buffer : buffer_names_) {
        const std::string key = slot.param.name + "." + buffer;
        expected_tensors.insert(key);
        auto it = state.tensors.find(key);
        if (it == state.tensors.end()) {
          throw std::invalid_argument(who + " state is missing tensor '" + key + "'" + hint);
        }
        if (!it->second.defined()) {
          throw std::invalid_argument(who + " state tensor '" + key + "' is undefined");
        }
        if (it->second.shape() != slot.param.tensor.shape()) {
          throw std::invalid_argument(who + " state tensor '" + key + "' has shape " +
                                      core::shape_str(it->second.shape()) + "; parameter '" +
                                      slot.param.name + "' expects " +
                                      core::shape_str(slot.param.tensor.shape()));
        }
      }
    }
  }
  for (const auto& entry : state.tensors) {
    if (expected_tensors.count(entry.first) == 0) {
      throw std::invalid_argument(who + " state has unknown tensor '" + entry.first + "'" + hint);
    }
  }
  for (const auto& entry : state.scalars) {
    if (expected_scalars.count(entry.first) == 0) {
      throw std::invalid_argument(who + " state has unknown scalar '" + entry.first + "'" + hint);
    }
  }

  step_count_ = static_cast<std::size_t>(state.scalars.at("step"));
  for (Group& group : groups_) {
    for (ParamSlot& slot : group.slots) {
      slot.step = static_cast<std::int64_t>(state.scalars.at(slot.param.name + ".step"));
      for (std::size_t b = 0; b < buffer_names_.size(); ++b) {
        slot.buffers[b].copy_(state.tensors.at(slot.param.name + "." + buffer_names_[b]));
      }
    }
  }
}

}  // namespace qkv::optim
