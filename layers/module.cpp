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

Tensor Module::register_parameter(const std::string& name, Tensor value, ParamKind kind) {
  check_local_name("parameter", name);
  if (!value.defined()) {
    throw std::invalid_argument("Module: parameter '" + name + "' is an undefined tensor");
  }
  if (!value.is_leaf()) {
    throw std::invalid_argument("Module: parameter '" + name +
                                "' must be a leaf tensor (detach() it first)");
  }
  for (const auto& p : parameters_) {
    if (p.name == name) throw std::invalid_argument("Module: parameter '" + name + "' registered twice");
  }
  for (const auto& c : children_) {
    if (c.first == name) {
      throw std::invalid_argument("Module: parameter '" + name + "' clashes with a child module");
    }
  }
  value.requires_grad_();
  parameters_.push_back({name, value, kind});
  return value;
}

void Module::add_child(const std::string& name, std::shared_ptr<Module> module) {
  check_local_name("child module", name);
  if (!module) throw std::invalid_argument("Module: child module '" + name + "' is null");
  for (const auto& c : children_) {
    if (c.first == name) throw std::invalid_argument("Module: child module '" + name + "' registered twice");
  }
  for (const auto& p : parameters_) {
    if (p.name == name) {
      throw std::invalid_argument("Module: child module '" + name + "' clashes with a parameter");
    }
  }
  module->train(training_);
  children_.emplace_back(name, std::move(module));
}

void Module::collect(const std::string& prefix, std::vector<NamedParameter>& out) const {
  for (const auto& p : parameters_) out.push_back({prefix + p.name, p.tensor, p.kind});
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
}

std::map<std::string, Tensor> Module::state() const {
  std::map<std::string, Tensor> out;
  for (const auto& p : named_parameters()) out.emplace(p.name, p.tensor.clone());
  return out;
}

void Module::load_state(const std::map<std::string, Tensor>& state) {
  // Check everything before changing anything, so a bad state leaves the model intact.
  const std::vector<NamedParameter> params = named_parameters();
  std::vector<std::string> missing;
  for (const auto& p : params) {
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
                          " parameter(s) missing from the state:";
    for (const auto& name : missing) message += " '" + name + "'";
    throw std::invalid_argument(message);
  }
  if (state.size() != params.size()) {
    std::vector<std::string> names;
    for (const auto& p : params) names.push_back(p.name);
    for (const auto& [name, tensor] : state) {
      if (std::find(names.begin(), names.end(), name) != names.end()) continue;
      std::string message =
          "load_state: unknown tensor '" + name + "' (the model has no parameter by that name";
      const std::string suggestion = closest_match(name, names);
      if (!suggestion.empty()) message += "; did you mean '" + suggestion + "'?";
      throw std::invalid_argument(message + ")");
    }
  }
  for (const auto& p : params) {
    Tensor target = p.tensor;
    target.copy_(state.at(p.name));
  }
}

}  // namespace qkv::layers
