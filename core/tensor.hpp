// Tensor: a cheap, shareable handle to one node of the autograd graph.
//
// A node holds a value (row-major, contiguous storage of float or double), a lazily
// allocated gradient, whether it requires grad, and — when it was produced by an op
// while grad mode was on — its input tensors and a backward function. Copying a Tensor
// shares the node, like a shared_ptr; the node itself is internal to core/. The dtype is
// a runtime property so that one model can be run in float32 for training and converted
// to float64 for gradient checks.
//
//   Tensor w = Tensor::randn({3, 4}, rng).requires_grad_();
//   Tensor loss = sum(mul(w, w));
//   loss.backward();            // w.grad() now holds 2w
//
// The ops are in core/ops.hpp; writing a new op (record, dispatch, add_to_grad) is
// core/op.hpp. This header stays free of xtensor so that every file may include it
// cheaply; the storage and the graph walk live in tensor.cpp / autograd.cpp.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/buffer_pool.hpp"

namespace qkv::core {

enum class DType { f32, f64 };

const char* dtype_name(DType dtype);

// A vector of extents whose memory comes from this thread's pool (core/buffer_pool.hpp),
// so that making and copying shapes allocates nothing in the steady state.
using Shape = std::vector<std::size_t, PoolAllocator<std::size_t>>;

std::size_t shape_numel(const Shape& shape);
std::string shape_str(const Shape& shape);  // "[2, 3, 4]"

class Rng;
struct Node;
namespace detail {
struct NodeAccess;  // core's internal way from a Tensor to its node (core/node.hpp)
}

class Tensor {
 public:
  Tensor() = default;  // undefined; defined() is false
  // Copying and moving share the node like a shared_ptr. Dropping a handle (destruction,
  // assignment) lets the node's values go when only ops that do not read them still hold
  // it (core/op.hpp, Reads).
  Tensor(const Tensor&) = default;
  Tensor(Tensor&&) noexcept = default;
  Tensor& operator=(const Tensor& other);
  Tensor& operator=(Tensor&& other) noexcept;
  ~Tensor();

  // Construction. All values are contiguous and row-major.
  static Tensor empty(const Shape& shape, DType dtype = DType::f32);
  static Tensor zeros(const Shape& shape, DType dtype = DType::f32);
  static Tensor ones(const Shape& shape, DType dtype = DType::f32);
  static Tensor full(const Shape& shape, double value, DType dtype = DType::f32);
  static Tensor scalar(double value, DType dtype = DType::f32);
  static Tensor from_vector(const std::vector<float>& values, const Shape& shape);
  static Tensor from_vector(const std::vector<double>& values, const Shape& shape);
  // Standard normal / uniform [lo, hi) values from the project's RNG (same on every
  // platform for the same seed).
  static Tensor randn(const Shape& shape, Rng& rng, DType dtype = DType::f32);
  static Tensor uniform(const Shape& shape, double lo, double hi, Rng& rng,
                        DType dtype = DType::f32);

  bool defined() const { return node_ != nullptr; }
  const Shape& shape() const;
  std::size_t dim() const { return shape().size(); }
  std::size_t size(int axis) const;  // negative axes count from the end
  std::size_t numel() const;
  DType dtype() const;

  // Raw access to the values; T must match dtype() (checked). Values released because no
  // backward declared it reads them (core/op.hpp, Reads) throw std::logic_error.
  template <class T> T* data();
  template <class T> const T* data() const;
  double item() const;  // the value of a one-element tensor
  double at(std::initializer_list<std::size_t> index) const;
  std::vector<double> to_vector() const;

  // Autograd.
  bool requires_grad() const;
  Tensor& requires_grad_(bool requires = true);  // only on leaves
  bool is_leaf() const;
  Tensor grad() const;  // undefined until a backward pass reaches this tensor
  void zero_grad();     // drops the gradient (it is reallocated as zeros when needed)
  void backward() const;                    // this must be a one-element tensor
  void backward(const Tensor& grad) const;  // seed gradient of this tensor's shape
  Tensor detach() const;                    // shares the values, no history

  // A copy with its own storage (no history), optionally in another dtype.
  Tensor clone() const;
  Tensor to(DType dtype) const;
  // Overwrite the values in place from a tensor of the same shape (any dtype). Used by
  // optimizers, state loading and inspection; it is not recorded in the graph.
  void copy_(const Tensor& source);
  void fill_(double value);
  // Converts the values to another dtype in place: every handle to this tensor sees the
  // new dtype (a model's layers keep handles to their parameters). Only for leaves; the
  // gradient is dropped.
  void convert_(DType dtype);

  // The gradient as a writable buffer, allocated as zeros the first time it is asked
  // for: optimizers update and clip it in place, and backward functions add into it
  // (core/op.hpp). T must match dtype() (checked).
  template <class T> T* grad_buffer() const;

  // Identity, not value equality: two handles are the same tensor when they share one
  // node. id() is that identity as a key for maps and sets (e.g. to find a parameter
  // listed twice); it is only meaningful while the tensor is alive.
  bool same(const Tensor& other) const { return node_ == other.node_; }
  const void* id() const { return node_.get(); }

 private:
  friend struct detail::NodeAccess;
  explicit Tensor(std::shared_ptr<Node> node) : node_(std::move(node)) {}
  // Before this handle lets go of its node: releases the node's values if the handle is
  // the last holder that may read them.
  void release_unread_values() noexcept;

  std::shared_ptr<Node> node_;
};

// Graph building switch. While a NoGrad is alive, ops record nothing.
class NoGrad {
 public:
  NoGrad();
  ~NoGrad();
  NoGrad(const NoGrad&) = delete;
  NoGrad& operator=(const NoGrad&) = delete;

 private:
  bool previous_;
};
bool grad_enabled();

}  // namespace qkv::core
