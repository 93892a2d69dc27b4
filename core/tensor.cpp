// Tensor construction, access and the history bookkeeping shared by every op. The graph
// walk itself (backward) is in autograd.cpp.
#include "core/tensor.hpp"

#include <algorithm>
#include <sstream>
#include <stdexcept>

#include "core/buffer_pool.hpp"
#include "core/node.hpp"
#include "core/op.hpp"
#include "core/random.hpp"

namespace qkv::core {

namespace {

thread_local bool grad_mode = true;

const Node& node_of(const std::shared_ptr<Node>& node) {
  if (!node) throw std::logic_error("use of an undefined Tensor");
  return *node;
}

template <class T> constexpr DType dtype_of();
template <> constexpr DType dtype_of<float>() { return DType::f32; }
template <> constexpr DType dtype_of<double>() { return DType::f64; }

Tensor make_tensor(const Shape& shape, DType dtype) {
  auto node = make_node();
  node->dtype = dtype;
  node->shape = shape;
  node->numel = shape_numel(shape);
  node->storage = make_storage(dtype, node->numel);
  return detail::NodeAccess::wrap(std::move(node));
}

template <class T, class F> void fill_with(Tensor& t, F&& value_at) {
  T* out = t.data<T>();
  const std::size_t n = t.numel();
  for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<T>(value_at(i));
}

template <class F> void fill_any(Tensor& t, F&& value_at) {
  if (t.dtype() == DType::f32) fill_with<float>(t, value_at);
  else fill_with<double>(t, value_at);
}

// Makes n's gradient safe to write in place (core/op.hpp, "Shared gradients"). An
// intermediate node's gradient may be a buffer pass_grad shares with other gradients, or
// one someone else still holds: then it is copied first. A leaf's gradient (its own
// buffer, or its place in a flat buffer, which shares that buffer's storage) is its own.
void own_grad(Node& n) {
  if (!n.grad.defined() || !n.backward || n.grad_home.defined()) return;
  const std::shared_ptr<Node>& grad = detail::NodeAccess::node(n.grad);
  if (grad.use_count() == 1 && grad->storage.use_count() == 1) return;
  n.grad = n.grad.clone();
}

}  // namespace

const char* dtype_name(DType dtype) { return dtype == DType::f32 ? "float32" : "float64"; }

std::size_t shape_numel(const Shape& shape) {
  std::size_t n = 1;
  for (std::size_t d : shape) n *= d;
  return n;
}

std::string shape_str(const Shape& shape) {
  std::ostringstream out;
  out << '[';
  for (std::size_t i = 0; i < shape.size(); ++i) out << (i ? ", " : "") << shape[i];
  out << ']';
  return out.str();
}

Storage::Storage(DType dtype, std::size_t numel)
    : values(pool_allocate(numel * (dtype == DType::f32 ? sizeof(float) : sizeof(double)))) {}

Storage::~Storage() { pool_release(values); }

std::shared_ptr<Node> make_node() { return std::allocate_shared<Node>(PoolAllocator<Node>()); }

std::shared_ptr<Storage> make_storage(DType dtype, std::size_t numel) {
  return std::allocate_shared<Storage>(PoolAllocator<Storage>(), dtype, numel);
}

// ---- construction ----

Tensor Tensor::empty(const Shape& shape, DType dtype) { return make_tensor(shape, dtype); }

Tensor Tensor::zeros(const Shape& shape, DType dtype) { return full(shape, 0.0, dtype); }

Tensor Tensor::ones(const Shape& shape, DType dtype) { return full(shape, 1.0, dtype); }

Tensor Tensor::full(const Shape& shape, double value, DType dtype) {
  Tensor t = make_tensor(shape, dtype);
  t.fill_(value);
  return t;
}

Tensor Tensor::scalar(double value, DType dtype) { return full({}, value, dtype); }

Tensor Tensor::from_vector(const std::vector<float>& values, const Shape& shape) {
  if (values.size() != shape_numel(shape))
    throw std::invalid_argument("Tensor::from_vector: " + std::to_string(values.size()) +
                                " values do not fill shape " + shape_str(shape));
  Tensor t = make_tensor(shape, DType::f32);
  std::copy(values.begin(), values.end(), t.data<float>());
  return t;
}

Tensor Tensor::from_vector(const std::vector<double>& values, const Shape& shape) {
  if (values.size() != shape_numel(shape))
    throw std::invalid_argument("Tensor::from_vector: " + std::to_string(values.size()) +
                                " values do not fill shape " + shape_str(shape));
  Tensor t = make_tensor(shape, DType::f64);
  std::copy(values.begin(), values.end(), t.data<double>());
  return t;
}

Tensor Tensor::randn(const Shape& shape, Rng& rng, DType dtype) {
  Tensor t = make_tensor(shape, dtype);
  fill_any(t, [&](std::size_t) { return rng.normal(); });
  return t;
}

Tensor Tensor::uniform(const Shape& shape, double lo, double hi, Rng& rng, DType dtype) {
  Tensor t = make_tensor(shape, dtype);
  fill_any(t, [&](std::size_t) { return rng.uniform(lo, hi); });
  return t;
}

// ---- access ----

const Shape& Tensor::shape() const { return node_of(node_).shape; }

std::size_t Tensor::size(int axis) const {
  const Shape& s = shape();
  const int rank = static_cast<int>(s.size());
  const int a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank)
    throw std::invalid_argument("Tensor::size: axis " + std::to_string(axis) +
                                " out of range for shape " + shape_str(s));
  return s[static_cast<std::size_t>(a)];
}

std::size_t Tensor::numel() const { return node_of(node_).numel; }

DType Tensor::dtype() const { return node_of(node_).dtype; }

namespace {

// Only a backward can reach a node whose values were released (every handle to it is
// gone): one that reads an input it declared it does not.
[[noreturn]] void released_error(const Node& n) {
  const std::string what = n.op ? std::string("the output of '") + n.op + "'" : "a tensor";
  throw std::logic_error(
      "Tensor::data: the values of " + what + " (shape " + shape_str(n.shape) +
      ") were released, since no handle and no op that reads "
      "them held it any more ('" + (n.unread_by ? n.unread_by : "an op") + "' declared in "
      "record() that its backward does not read them); a backward that reads an input's values "
      "must list it in its Reads (core/op.hpp)");
}

}  // namespace

template <class T> T* Tensor::data() {
  const Node& n = node_of(node_);
  if (n.dtype != dtype_of<T>())
    throw std::invalid_argument(std::string("Tensor::data: tensor is ") + dtype_name(n.dtype) +
                                ", asked for " + dtype_name(dtype_of<T>()));
  if (!n.storage) released_error(n);
  return static_cast<T*>(n.storage->values) + n.offset;
}

template <class T> const T* Tensor::data() const { return const_cast<Tensor*>(this)->data<T>(); }

template float* Tensor::data<float>();
template double* Tensor::data<double>();
template const float* Tensor::data<float>() const;
template const double* Tensor::data<double>() const;

std::vector<double> Tensor::to_vector() const {
  std::vector<double> out(numel());
  if (dtype() == DType::f32) std::copy(data<float>(), data<float>() + numel(), out.begin());
  else std::copy(data<double>(), data<double>() + numel(), out.begin());
  return out;
}

double Tensor::item() const {
  if (numel() != 1)
    throw std::invalid_argument("Tensor::item: tensor of shape " + shape_str(shape()) +
                                " has " + std::to_string(numel()) + " elements, not 1");
  return dtype() == DType::f32 ? data<float>()[0] : data<double>()[0];
}

double Tensor::at(std::initializer_list<std::size_t> index) const {
  const Shape& s = shape();
  if (index.size() != s.size())
    throw std::invalid_argument("Tensor::at: " + std::to_string(index.size()) +
                                " indices for shape " + shape_str(s));
  std::size_t offset = 0, axis = 0;
  for (std::size_t i : index) {
    if (i >= s[axis])
      throw std::invalid_argument("Tensor::at: index " + std::to_string(i) + " out of range on axis " +
                                  std::to_string(axis) + " of shape " + shape_str(s));
    offset = offset * s[axis++] + i;
  }
  return dtype() == DType::f32 ? data<float>()[offset] : data<double>()[offset];
}

// ---- autograd state ----

bool Tensor::requires_grad() const { return node_of(node_).requires_grad; }

Tensor& Tensor::requires_grad_(bool requires) {
  node_of(node_);
  if (!is_leaf())
    throw std::invalid_argument(
        "requires_grad_: only leaf tensors can change requires_grad (use detach() first)");
  node_->requires_grad = requires;
  return *this;
}

bool Tensor::is_leaf() const {
  const Node& n = node_of(node_);
  return !n.backward && !n.history_freed;
}

Tensor Tensor::grad() const { return node_of(node_).grad; }

void Tensor::zero_grad() {
  node_of(node_);
  node_->grad = Tensor();
}

template <class T> T* Tensor::grad_buffer() const {
  Node& n = *node_;
  if (!n.grad.defined()) {
    n.grad = n.grad_home.defined() ? n.grad_home : empty(n.shape, n.dtype);
    n.grad.fill_(0.0);
  }
  own_grad(n);
  return n.grad.data<T>();
}

template float* Tensor::grad_buffer<float>() const;
template double* Tensor::grad_buffer<double>() const;

template <class T> GradTarget<T> grad_for_write(const Tensor& t) {
  Node& n = *detail::NodeAccess::node(t);
  // Checked before allocating: an uninitialized buffer left behind would pass for gradient.
  if (n.dtype != dtype_of<T>())
    throw std::invalid_argument(std::string("grad_for_write: tensor is ") + dtype_name(n.dtype) +
                                ", asked for " + dtype_name(dtype_of<T>()));
  const bool fresh = !n.grad.defined();
  if (fresh) n.grad = n.grad_home.defined() ? n.grad_home : Tensor::empty(n.shape, n.dtype);
  else own_grad(n);
  return {n.grad.data<T>(), fresh};
}

template GradTarget<float> grad_for_write<float>(const Tensor&);
template GradTarget<double> grad_for_write<double>(const Tensor&);

void pass_grad(const Tensor& t, const Tensor& grad) {
  Node& n = *detail::NodeAccess::node(t);
  if (grad.dtype() != n.dtype || grad.numel() != n.numel)
    throw std::invalid_argument("pass_grad: gradient of shape " + shape_str(grad.shape()) + " (" +
                                dtype_name(grad.dtype()) + ") for a tensor of shape " +
                                shape_str(n.shape) + " (" + dtype_name(n.dtype) +
                                "); expected the tensor's dtype and element count");
  if (!n.grad.defined() && n.backward && !n.grad_home.defined()) {
    if (grad.shape() == n.shape) {
      n.grad = grad;
    } else {  // the same values seen through t's shape
      n.grad = grad.detach();
      detail::NodeAccess::node(n.grad)->shape = n.shape;
    }
    return;
  }
  dispatch(n.dtype, [&](auto tag) {
    using T = decltype(tag);
    const T* from = grad.data<T>();
    add_to_grad<T>(t, [from](std::size_t i) { return from[i]; });
  });
}

Tensor Tensor::detach() const {
  const Node& n = node_of(node_);
  auto node = make_node();
  node->dtype = n.dtype;
  node->shape = n.shape;
  node->numel = n.numel;
  node->storage = n.storage;
  node->offset = n.offset;
  return detail::NodeAccess::wrap(std::move(node));
}

Tensor Tensor::clone() const { return to(dtype()); }

Tensor Tensor::to(DType dtype) const {
  Tensor out = make_tensor(shape(), dtype);
  out.copy_(*this);
  return out;
}

void Tensor::copy_(const Tensor& source) {
  if (source.shape() != shape())
    throw std::invalid_argument("Tensor::copy_: source shape " + shape_str(source.shape()) +
                                " differs from destination shape " + shape_str(shape()));
  if (source.dtype() == DType::f32) {
    const float* in = source.data<float>();
    fill_any(*this, [&](std::size_t i) { return in[i]; });
  } else {
    const double* in = source.data<double>();
    fill_any(*this, [&](std::size_t i) { return in[i]; });
  }
}

void Tensor::convert_(DType dtype) {
  if (!is_leaf())
    throw std::invalid_argument("convert_: only leaf tensors can change dtype in place");
  if (dtype == this->dtype()) return;
  const Tensor converted = to(dtype);
  node_->dtype = dtype;
  node_->storage = converted.node_->storage;
  node_->offset = 0;
  node_->grad = Tensor();
  node_->grad_home = Tensor();
}

void Tensor::fill_(double value) {
  if (dtype() == DType::f32) std::fill_n(data<float>(), numel(), static_cast<float>(value));
  else std::fill_n(data<double>(), numel(), value);
}

// ---- handles and the release of unread values ----

Tensor::~Tensor() { release_unread_values(); }

Tensor& Tensor::operator=(const Tensor& other) {
  std::shared_ptr<Node> next = other.node_;  // counted first: other may share this node
  release_unread_values();
  node_ = std::move(next);
  return *this;
}

Tensor& Tensor::operator=(Tensor&& other) noexcept {
  if (this == &other) return *this;
  release_unread_values();  // other's hold on the same node, if any, is still counted
  node_ = std::move(other.node_);
  return *this;
}

// The holders left after this handle are the node's unread_holders alone: nothing may
// read the values again. The storage goes back to the pool unless an alias holds it too.
void Tensor::release_unread_values() noexcept {
  if (!node_) return;
  Node& n = *node_;
  if (n.unread_holders != 0 && n.storage &&
      node_.use_count() == static_cast<long>(n.unread_holders) + 1)
    n.storage.reset();
}

void Node::drop_history() noexcept {
  const std::size_t flagged = std::min<std::size_t>(inputs.size(), 64);
  for (std::size_t i = 0; i < flagged; ++i)
    if ((unread_inputs >> i & 1) && inputs[i].defined())
      --detail::NodeAccess::node(inputs[i])->unread_holders;
  unread_inputs = 0;
  backward = nullptr;
  inputs.clear();  // each input's handle goes, and with it, maybe, its values
}

// ---- history ----

bool grad_enabled() { return grad_mode; }

NoGrad::NoGrad() : previous_(grad_mode) { grad_mode = false; }
NoGrad::~NoGrad() { grad_mode = previous_; }

bool needs_grad(std::initializer_list<const Tensor*> inputs) {
  if (!grad_mode) return false;
  for (const Tensor* t : inputs)
    if (t && t->defined() && t->requires_grad()) return true;
  return false;
}

void record(Tensor& result, const char* op, Inputs inputs, BackwardFn backward, Reads reads) {
  if (!grad_mode) return;
  const bool any = std::any_of(inputs.begin(), inputs.end(),
                               [](const Tensor& t) { return t.defined() && t.requires_grad(); });
  if (!any) return;
  Node& n = *detail::NodeAccess::node(result);
  n.requires_grad = true;
  n.op = op;
  n.inputs = std::move(inputs);
  n.backward = std::move(backward);
  const std::size_t flagged = std::min<std::size_t>(n.inputs.size(), 64);
  for (std::size_t i = 0; i < flagged; ++i) {
    if (!(reads.unread() >> i & 1) || !n.inputs[i].defined()) continue;
    n.unread_inputs |= std::uint64_t{1} << i;
    Node& input = *detail::NodeAccess::node(n.inputs[i]);
    ++input.unread_holders;
    input.unread_by = op;
  }
}

}  // namespace qkv::core
