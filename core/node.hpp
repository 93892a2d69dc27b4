// Node: what a Tensor handle points to. Internal to core/ (tensor.cpp, the graph walk
// and the few ops that alias storage); users and op authors go through Tensor and
// core/op.hpp.
//
// Values live in a Storage shared between nodes that alias the same numbers (reshape,
// detach, the parts of a flat parameter buffer), so those cost no copy; a node sees its
// values from `offset` on. A Storage's buffer comes from this thread's buffer pool
// (core/buffer_pool.hpp) and goes back to it, and the node, its storage's count, shape,
// inputs and backward are small blocks of that pool, so a training step reuses the memory
// of the step before instead of allocating.
#pragma once

#include <cstdint>
#include <memory>

#include "core/op.hpp"
#include "core/tensor.hpp"

namespace qkv::core {

// numel float or double values, uninitialized (aligned for any SIMD width).
struct Storage {
  Storage(DType dtype, std::size_t numel);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* values;
};

struct Node {
  Node() = default;
  ~Node() { drop_history(); }
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  DType dtype = DType::f32;
  Shape shape;
  std::size_t numel = 0;
  std::shared_ptr<Storage> storage;
  std::size_t offset = 0;  // of the node's first value in storage, in elements

  bool requires_grad = false;
  Tensor grad;  // same shape and dtype; allocated on first accumulation
  // Where grad is put when it is allocated, if set: a view into a flat gradient buffer
  // (core/flat.hpp), so that the gradients of many parameters are one span.
  Tensor grad_home;

  // History, set by record() and dropped by backward() once used.
  const char* op = nullptr;
  Inputs inputs;
  BackwardFn backward;
  bool history_freed = false;  // had history that a backward pass already consumed
  std::uint64_t walk = 0;      // the last backward pass whose sort reached it (autograd.cpp)

  // The release of values no backward reads (core/op.hpp, Reads). Bit i of unread_inputs:
  // this node's backward does not read inputs[i]'s values. unread_holders counts the
  // entries of other nodes' inputs that hold this node without reading it; when they are
  // all that hold it, its storage is let go (Tensor's destructor and assignments check).
  // unread_by is the last op that declared so, for the error when a backward reads anyway.
  std::uint64_t unread_inputs = 0;
  std::uint32_t unread_holders = 0;
  const char* unread_by = nullptr;

  // Clears the history (inputs and backward), first giving back the holds on the inputs
  // it does not read, so that their count stays true.
  void drop_history() noexcept;
};

// A node without values or history, and a fresh storage: both in one block of this
// thread's pool with their shared_ptr's count.
std::shared_ptr<Node> make_node();
std::shared_ptr<Storage> make_storage(DType dtype, std::size_t numel);

namespace detail {

// The one way from a Tensor handle to its node and back (Tensor befriends it).
struct NodeAccess {
  static const std::shared_ptr<Node>& node(const Tensor& t) { return t.node_; }
  static Tensor wrap(std::shared_ptr<Node> node) { return Tensor(std::move(node)); }
};

}  // namespace detail

}  // namespace qkv::core
