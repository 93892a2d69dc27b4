// Flat buffers for many tensors (see flat.hpp): the parts are views sharing one Storage.
#include "core/flat.hpp"

#include <set>
#include <stdexcept>
#include <string>

#include "core/node.hpp"

namespace qkv::core {

namespace {

// Checks the tensors and returns the dtype and total element count of their buffer.
std::pair<DType, std::size_t> layout(const char* who, const std::vector<Tensor>& tensors) {
  if (tensors.empty()) throw std::invalid_argument(std::string(who) + ": no tensors");
  std::set<const void*> seen;
  std::size_t total = 0;
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    const Tensor& t = tensors[i];
    const std::string which = std::string(who) + ": tensor " + std::to_string(i);
    if (!t.defined()) throw std::invalid_argument(which + " is undefined");
    if (!t.is_leaf()) throw std::invalid_argument(which + " is not a leaf (it has history)");
    if (t.dtype() != tensors[0].dtype())
      throw std::invalid_argument(which + " is " + dtype_name(t.dtype()) + ", tensor 0 is " +
                                  dtype_name(tensors[0].dtype()));
    if (!seen.insert(t.id()).second) throw std::invalid_argument(which + " is listed twice");
    total += t.numel();
  }
  return {tensors[0].dtype(), total};
}

// A leaf node of `shape` seeing storage from `offset`.
Tensor view(const std::shared_ptr<Storage>& storage, DType dtype, std::size_t offset,
            const Shape& shape) {
  auto node = make_node();
  node->dtype = dtype;
  node->shape = shape;
  node->numel = shape_numel(shape);
  node->storage = storage;
  node->offset = offset;
  return detail::NodeAccess::wrap(std::move(node));
}

}  // namespace

Tensor pack_values(const std::vector<Tensor>& tensors) {
  const auto [dtype, total] = layout("pack_values", tensors);
  const Tensor flat = Tensor::empty({total}, dtype);
  const std::shared_ptr<Storage>& storage = detail::NodeAccess::node(flat)->storage;
  std::size_t offset = 0;
  for (const Tensor& t : tensors) {
    const Tensor part = view(storage, dtype, offset, t.shape());
    Tensor(part).copy_(t);
    Node& node = *detail::NodeAccess::node(t);
    node.storage = storage;
    node.offset = offset;
    offset += t.numel();
  }
  return flat;
}

Tensor pack_gradients(const std::vector<Tensor>& tensors) {
  const auto [dtype, total] = layout("pack_gradients", tensors);
  const Tensor flat = Tensor::empty({total}, dtype);
  const std::shared_ptr<Storage>& storage = detail::NodeAccess::node(flat)->storage;
  std::size_t offset = 0;
  for (const Tensor& t : tensors) {
    Node& node = *detail::NodeAccess::node(t);
    node.grad_home = view(storage, dtype, offset, t.shape());
    if (node.grad.defined()) {
      node.grad_home.copy_(node.grad);
      node.grad = node.grad_home;
    }
    offset += t.numel();
  }
  return flat;
}

Tensor flat_part(const Tensor& flat, std::size_t offset, std::size_t count) {
  if (!flat.defined() || flat.dim() != 1 || offset + count > flat.numel())
    throw std::invalid_argument("flat_part: elements [" + std::to_string(offset) + ", " +
                                std::to_string(offset + count) + ") of a tensor of shape " +
                                (flat.defined() ? shape_str(flat.shape()) : "undefined") +
                                " (expected a 1-D tensor that holds them)");
  const Node& node = *detail::NodeAccess::node(flat);
  return view(node.storage, node.dtype, node.offset + offset, {count});
}

}  // namespace qkv::core
