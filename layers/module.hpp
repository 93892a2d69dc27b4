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
//
// Buffers are saved tensors that are never trained (a frozen random projection): no
// gradient, not in named_parameters() (so no optimizer sees them, and parameter_count()
// leaves them out), but in state() and load_state() under their dotted names like any
// parameter, so a checkpoint holds them. freeze() turns a module's parameters into buffers
// of the same names and values:
//
//   auto proj = register_module("wq", std::make_shared<Linear>(64, 64, rng));
//   proj->freeze();   // wq.weight and wq.bias: drawn as before, now buffers
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

// A buffer by dotted name (`blocks.0.attn.wq.weight` of a frozen wq).
struct NamedBuffer {
  std::string name;
  Tensor tensor;
};

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

  // Every buffer of this module and its children, named and ordered as parameters are.
  std::vector<NamedBuffer> named_buffers() const;
  std::size_t buffer_count() const;  // number of scalars

  // Every parameter of this module and its children becomes a buffer of the same name and
  // value: it keeps no gradient and the optimizer never sees it. Call it before the
  // optimizer is built from named_parameters().
  void freeze();

  // Training mode (dropout active) or evaluation mode, for this module and its children.
  void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }

  void zero_grad();

  // Converts every parameter and buffer to the dtype in place (float64 for gradient checks).
  void to(core::DType dtype);

  // Parameter and buffer values by dotted name (copies, detached).
  std::map<std::string, Tensor> state() const;
  // Loads values by name. Every parameter and buffer must be present with its exact shape,
  // and no unknown name may be given: errors name the tensor and both shapes.
  void load_state(const std::map<std::string, Tensor>& state);

  // Direct children, in registration order.
  const std::vector<std::pair<std::string, std::shared_ptr<Module>>>& children() const {
    return children_;
  }

 protected:
  Tensor register_parameter(const std::string& name, Tensor value,
                            ParamKind kind = ParamKind::weight);
  // A saved tensor that is never trained (see above); names share the parameters' space.
  Tensor register_buffer(const std::string& name, Tensor value);
  template <class M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> module) {
    add_child(name, module);
    return module;
  }

 private:
  void add_child(const std::string& name, std::shared_ptr<Module> module);
  void collect(const std::string& prefix, std::vector<NamedParameter>& out) const;
  void collect(const std::string& prefix, std::vector<NamedBuffer>& out) const;
  void check_free_name(const std::string& what, const std::string& name) const;
  void check_new_tensor(const std::string& what, const std::string& name, const Tensor& value) const;
  std::vector<NamedBuffer> saved_tensors() const;  // parameters, then buffers

  std::vector<NamedParameter> parameters_;
  std::vector<NamedBuffer> buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  bool training_ = true;
};

}  // namespace qkv::layers
