// Module: ordered parameter and child storage, dotted names, modes, state by name.
#include "layers/module.hpp"

#include <algorithm>
#include <stdexcept>

#include "core/tensor.hpp"
#include "strict_yaml/closest_match.hpp"

namespace qkv::layers {

namespace {

void check_local_name(const char* what, const std::string& name) {
  if (name.empty() || name.find('.') != std::string::npos) {
    throw std::invalid_argument(std::string("Module: ") + what + " name '" + name +
                                "' must be non-empty and contain no '.' (dots join paths)");
  }
}

}  // namespace

void Module::check_free_name(const std::string& what, const std::string& name) const {
  check_local_name(what.c_str(), name);
  std::string holder;  // what already goes by this name
  for (const auto& p : parameters_)
    if (p.name == name) holder = "parameter";
  for (const auto& b : buffers_)
    if (b.name == name) holder = "buffer";
  for (const auto& c : children_)
    if (c.first == name) holder = "child module";
  if (holder.empty()) return;
  throw std::invalid_argument("Module: " + what + " '" + name + "' " +
                              (holder == what ? "registered twice" : "clashes with a " + holder));
}

void Module::check_new_tensor(const std::string& what, const std::string& name,
                              const Tensor& value) const {
  check_free_name(what, name);
  if (!value.defined()) {
    throw std::invalid_argument("Module: " + what + " '" + name + "' is an undefined tensor");
  }
  if (!value.is_leaf()) {
    throw std::invalid_argument("Module: " + what + " '" + name +
                                "' must be a leaf tensor (detach() it first)");
  }
}

Tensor Module::register_parameter(const std::string& name, Tensor value, ParamKind kind) {
  check_new_tensor("parameter", name, value);
  value.requires_grad_();
  parameters_.push_back({name, value, kind});
  return value;
}

Tensor Module::register_buffer(const std::string& name, Tensor value) {
  check_new_tensor("buffer", name, value);
  value.requires_grad_(false);
  buffers_.push_back({name, value});
  return value;
}

void Module::freeze() {
  // The same tensors move, so the layers' own handles see buffers from now on.
  for (auto& p : parameters_) {
    Tensor t = p.tensor;
    t.zero_grad();
    t.requires_grad_(false);
    buffers_.push_back({p.name, t});
  }
  parameters_.clear();
  for (const auto& [name, child] : children_) child->freeze();
}

void Module::add_child(const std::string& name, std::shared_ptr<Module> module) {
  check_free_name("child module", name);
  if (!module) throw std::invalid_argument("Module: child module '" + name + "' is null");
  module->train(training_);
  children_.emplace_back(name, std::move(module));
}

void Module::collect(const std::string& prefix, std::vector<NamedParameter>& out) const {
  for (const auto& p : parameters_) out.push_back({prefix + p.name, p.tensor, p.kind});
  for (const auto& [name, child] : children_) child->collect(prefix + name + ".", out);
}

void Module::collect(const std::string& prefix, std::vector<NamedBuffer>& out) const {
  for (const auto& b : buffers_) out.push_back({prefix + b.name, b.tensor});
  for (const auto& [name, child] : children_) child->collect(prefix + name + ".", out);
}

std::vector<NamedParameter> Module::named_parameters() const {
  std::vector<NamedParameter> out;
  collect("", out);
  return out;
}

std::vector<Tensor> Module::parameters() const {
  std::vector<Tensor> out;
  for (const auto& p : named_parameters()) out.push_back(p.tensor);
  return out;
}

std::size_t Module::parameter_count() const {
  std::size_t count = 0;
  for (const auto& p : named_parameters()) count += p.tensor.numel();
  return count;
}

std::vector<NamedBuffer> Module::named_buffers() const {
  std::vector<NamedBuffer> out;
  collect("", out);
  return out;
}

std::size_t Module::buffer_count() const {
  std::size_t count = 0;
  for (const auto& b : named_buffers()) count += b.tensor.numel();
  return count;
}

void Module::train(bool on) {
  training_ = on;
  for (const auto& [name, child] : children_) child->train(on);
}

void Module::zero_grad() {
  for (const auto& p : named_parameters()) {
    Tensor t = p.tensor;
    t.zero_grad();
  }
}

void Module::to(core::DType dtype) {
  // Layers hold handles to their parameters, so each converts in place: the handles stay
  // valid and see the new values. Gradients of the old dtype are dropped.
  for (auto p : named_parameters()) p.tensor.convert_(dtype);
  for (auto b : named_buffers()) b.tensor.convert_(dtype);
}

std::vector<NamedBuffer> Module::saved_tensors() const {
  std::vector<NamedBuffer> out;
  for (const auto& p : named_parameters()) out.push_back({p.name, p.tensor});
  for (const auto& b : named_buffers()) out.push_back(b);
  return out;
}

std::map<std::string, Tensor> Module::state() const {
  std::map<std::string, Tensor> out;
  for (const auto& t : saved_tensors()) out.emplace(t.name, t.tensor.clone());
  return out;
}

void Module::load_state(const std::map<std::string, Tensor>& state) {
  // Check everything before changing anything, so a bad state leaves the model intact.
  const std::vector<NamedBuffer> saved = saved_tensors();
  std::vector<std::string> missing;
  for (const auto& p : saved) {
    const auto it = state.find(p.name);
    if (it == state.end()) {
      missing.push_back(p.name);
      continue;
    }
    if (!it->second.defined() || it->second.shape() != p.tensor.shape()) {
      throw std::invalid_argument(
          "load_state: tensor '" + p.name + "' has shape " +
          (it->second.defined() ? core::shape_str(it->second.shape()) : std::string("(undefined)")) +
          "; model expects " + core::shape_str(p.tensor.shape()));
    }
  }
  if (!missing.empty()) {
    std::string message = "load_state: " + std::to_string(missing.size()) +
                          " tensor(s) missing from the state:";
    for (const auto& name : missing) message += " '" + name + "'";
    throw std::invalid_argument(message);
  }
  if (state.size() != saved.size()) {
    std::vector<std::string> names;
    for (const auto& p : saved) names.push_back(p.name);
    for (const auto& [name, tensor] : state) {
      if (std::find(names.begin(), names.end(), name) != names.end()) continue;
      std::string message = "load_state: unknown tensor '" + name +
                            "' (the model has no parameter or buffer by that name";
      const std::string suggestion = closest_match(name, names);
      if (!suggestion.empty()) message += "; did you mean '" + suggestion + "'?";
      throw std::invalid_argument(message + ")");
    }
  }
  for (const auto& p : saved) {
    Tensor target = p.tensor;
    target.copy_(state.at(p.name));
  }
}

}  // namespace qkv::layers
