// Node: what a Tensor handle points to. Internal to core/ (tensor.cpp, the graph walk
// and the few ops that alias storage); users and op authors go through Tensor and
// core/op.hpp.
//
// Values live in a Storage shared between nodes that alias the same numbers (reshape,
// detach), so those cost no copy. The storage is xtensor's own contiguous container
// (xt::uvector) of float or double.
#pragma once

#include <memory>
#include <variant>

#include <xtensor/xstorage.hpp>

#include "core/op.hpp"
#include "core/tensor.hpp"

namespace qkv::core {

struct Storage {
  std::variant<xt::uvector<float>, xt::uvector<double>> values;
};

struct Node {
  DType dtype = DType::f32;
  Shape shape;
  std::size_t numel = 0;
  std::shared_ptr<Storage> storage;

  bool requires_grad = false;
  Tensor grad;  // same shape and dtype; allocated on first accumulation

  // History, set by record() and dropped by backward() once used.
  const char* op = nullptr;
  Inputs inputs;
  BackwardFn backward;
  bool history_freed = false;  // had history that a backward pass already consumed
};

std::shared_ptr<Storage> make_storage(DType dtype, std::size_t numel);

namespace detail {

// The one way from a Tensor handle to its node and back (Tensor befriends it).
struct NodeAccess {
  static const std::shared_ptr<Node>& node(const Tensor& t) { return t.node_; }
  static Tensor wrap(std::shared_ptr<Node> node) { return Tensor(std::move(node)); }
};

}  // namespace detail

}  // namespace qkv::core
