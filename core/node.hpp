// Node: what a Tensor handle points to. Internal to core/ (op files and the graph walk);
// users go through Tensor.
//
// Values live in a Storage shared between nodes that alias the same numbers (reshape,
// detach), so those cost no copy. The storage is xtensor's own contiguous container
// (xt::uvector) of float or double.
#pragma once

#include <variant>

#include <xtensor/xstorage.hpp>

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
  std::vector<Tensor> inputs;
  BackwardFn backward;
  bool history_freed = false;  // had history that a backward pass already consumed
};

// Internal helpers shared by the op files.
std::shared_ptr<Storage> make_storage(DType dtype, std::size_t numel);

}  // namespace qkv::core
