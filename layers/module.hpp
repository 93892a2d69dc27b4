// Module: the base of every layer. It owns named parameters and named child modules in
// registration order, and gives the dotted names that checkpoints and optimizers use.
//
//   class Scale : public Module {
//    public:
//     explicit Scale(std::size_t n) {
//       gain_ = register_parameter("gain", Tensor::ones({n}), ParamKind::norm);
//     }
//     Tensor forward(const Tensor& x) { return mul(x, gain_); }
//    private:
//     Tensor gain_;
//   };
//
// Parameters are leaf tensors with requires_grad set. A module's own layers keep handles
// to their parameters (and children), so forward code reads them directly.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/parameter.hpp"
#include "core/tensor.hpp"

namespace qkv::layers {

using core::NamedParameter;
using core::ParamKind;
using core::Tensor;

class Module {
 public:
  virtual ~Module() = default;
  Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  // Every parameter of this module and its children, depth first in registration order,
  // named by dotted path (`blocks.0.attn.wq.weight`).
  std::vector<NamedParameter> named_parameters() const;
  std::vector<Tensor> parameters() const;
  std::size_t parameter_count() const;  // number of scalars

  // Training mode (dropout active) or evaluation mode, for this module and its children.
  void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }

  void zero_grad();

  // Converts every parameter to the dtype in place (float64 for gradient checks).
  void to(core::DType dtype);

  // Parameter values by dotted name (copies, detached).
  std::map<std::string, Tensor> state() const;
  // Loads values by name. Every parameter must be present with its exact shape, and no
  // unknown name may be given: errors name the tensor and both shapes.
  void load_state(const std::map<std::string, Tensor>& state);

  // Direct children, in registration order.
  const std::vector<std::pair<std::string, std::shared_ptr<Module>>>& children() const {
    return children_;
  }

 protected:
  Tensor register_parameter(const std::string& name, Tensor value,
                            ParamKind kind = ParamKind::weight);
  template <class M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> module) {
    add_child(name, module);
    return module;
  }

 private:
  void add_child(const std::string& name, std::shared_ptr<Module> module);
  void collect(const std::string& prefix, std::vector<NamedParameter>& out) const;

  std::vector<NamedParameter> parameters_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  bool training_ = true;
};

}  // namespace qkv::layers
