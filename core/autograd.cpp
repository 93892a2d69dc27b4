// The reverse-mode graph walk: an iterative topological sort from the output (no recursion
// limit), then each node's backward in reverse order. A node's history (inputs and
// backward function) is dropped as soon as it has run, so memory is released during the
// walk, and a second backward through the same graph is detected and refused.
#include <atomic>
#include <cstdint>
#include <stdexcept>
#include <utility>
#include <vector>

#include "core/node.hpp"
#include "core/op.hpp"
#include "core/tensor.hpp"

namespace qkv::core {

namespace {

[[noreturn]] void freed_error(const Node& node) {
  throw std::logic_error(std::string("backward: the graph through '") +
                         (node.op ? node.op : "an op") +
                         "' was already freed by an earlier backward(); run the forward "
                         "pass again before calling backward a second time");
}

// The walk's lists, kept by each thread between passes so that a pass allocates nothing
// once its graphs stop growing. A backward run from inside a backward finds them taken
// (moved out) and makes its own.
struct WalkLists {
  std::vector<std::shared_ptr<Node>> order;
  // Nodes being visited and their next input; each points into a consumer's inputs (or is
  // the root's handle), which stay put while the sort runs.
  std::vector<std::pair<const std::shared_ptr<Node>*, std::size_t>> stack;
};
thread_local WalkLists kept_lists;

// A number no earlier pass used, marking the nodes a pass has seen (Node::walk).
std::uint64_t new_walk() {
  static std::atomic<std::uint64_t> walks{0};
  return ++walks;
}

// Fills lists.order with the nodes reachable from root that take part in the gradient,
// inputs before consumers. The order owns its nodes, so that clearing a consumer's inputs
// cannot free a node still to be visited.
void topological_order(const std::shared_ptr<Node>& root, WalkLists& lists) {
  const std::uint64_t walk = new_walk();
  lists.order.clear();
  lists.stack.clear();
  root->walk = walk;
  lists.stack.emplace_back(&root, 0);
  while (!lists.stack.empty()) {
    const std::shared_ptr<Node>& node = *lists.stack.back().first;
    const std::size_t next = lists.stack.back().second;
    if (next < node->inputs.size()) {
      ++lists.stack.back().second;
      const std::shared_ptr<Node>& input = detail::NodeAccess::node(node->inputs[next]);
      if (!input || !input->requires_grad || input->walk == walk) continue;
      if (input->history_freed) freed_error(*input);
      input->walk = walk;
      lists.stack.emplace_back(&input, 0);
    } else {
      lists.order.push_back(node);
      lists.stack.pop_back();
    }
  }
}

template <class T> void accumulate(const Tensor& into, const Tensor& grad) {
  const T* src = grad.data<T>();
  add_to_grad<T>(into, [src](std::size_t i) { return src[i]; });
}

}  // namespace

void Tensor::backward() const {
  if (!defined()) throw std::logic_error("backward: called on an undefined Tensor");
  if (numel() != 1)
    throw std::invalid_argument("backward: called on a tensor of shape " + shape_str(shape()) +
                                " without a gradient; only a one-element tensor (a loss) "
                                "gets the implicit gradient 1");
  backward(Tensor::ones(shape(), dtype()));
}

void Tensor::backward(const Tensor& grad) const {
  if (!defined()) throw std::logic_error("backward: called on an undefined Tensor");
  Node* root = node_.get();
  if (root->history_freed) freed_error(*root);
  if (!root->requires_grad)
    throw std::logic_error(
        "backward: this tensor does not require grad (no input of its graph requires grad, "
        "or it was computed under NoGrad)");
  if (grad.shape() != shape() || grad.dtype() != dtype())
    throw std::invalid_argument("backward: gradient of shape " + shape_str(grad.shape()) + " (" +
                                dtype_name(grad.dtype()) + ") for a tensor of shape " +
                                shape_str(shape()) + " (" + dtype_name(dtype()) + ")");

  WalkLists lists = std::move(kept_lists);
  topological_order(node_, lists);
  if (dtype() == DType::f32) accumulate<float>(*this, grad);
  else accumulate<double>(*this, grad);

  for (auto it = lists.order.rbegin(); it != lists.order.rend(); ++it) {
    Node& node = **it;
    if (!node.backward) continue;  // a leaf: its grad stays
    // A node no path of the output reaches with a gradient (all zero contributions are
    // still allocated) always has its grad here, since its consumer ran first.
    Tensor node_grad = std::move(node.grad);
    node.grad = Tensor();
    if (node_grad.defined()) node.backward(node_grad, node.inputs);
    node.drop_history();
    node.history_freed = true;
    it->reset();  // lets the node go as soon as nothing else holds it
  }
  lists.order.clear();
  kept_lists = std::move(lists);
}

}  // namespace qkv::core
