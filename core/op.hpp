// The op-author API: everything needed to write a differentiable op, the way core's own
// ops (ops_*.cpp) and a user's (examples/custom_layer/silu.cpp) are written.
//
// An op computes its value over raw pointers, then calls record() with the tensors it
// read and a backward function. The inputs passed to record() are the single source of
// truth: the backward receives them back, by index, as `inputs`, so it never captures an
// input tensor itself (it may capture saved non-input values: a detached output, shapes,
// scales, per-row statistics). It must not capture the op's own output either (that would
// be a reference cycle and leak the graph). It adds the input gradients, never overwrites
// them: an input may feed other ops too.
//
//   template <class T> Tensor square_impl(const Tensor& x) {
//     Tensor y = Tensor::empty(x.shape(), x.dtype());
//     const T* px = x.data<T>();
//     T* py = y.data<T>();
//     for (std::size_t i = 0; i < x.numel(); ++i) py[i] = px[i] * px[i];
//     record(y, "square", {x}, [](const Tensor& grad_y, const Inputs& in) {
//       const T* px = in[0].data<T>();
//       const T* pg = grad_y.data<T>();
//       add_to_grad<T>(in[0], [&](std::size_t i) { return T(2) * px[i] * pg[i]; });
//     });
//     return y;
//   }
//   Tensor square(const Tensor& x) {
//     return dispatch(x.dtype(), [&](auto tag) { return square_impl<decltype(tag)>(x); });
//   }
//
// Gradients, in order of preference:
//   pass_grad(t, g)                t's gradient gains g itself, the output's gradient
//                                  unchanged (add, sub's first input, reshape): an
//                                  intermediate t that has no gradient yet shares g's
//                                  buffer, no copy (see "Shared gradients" below);
//   add_to_grad<T>(t, value)       every element: grad[i] += value(i) (or = on a fresh
//                                  buffer, which skips a zero fill);
//   grad_for_write<T>(t) + store_grad  the same, for a backward that writes the gradient
//                                  row by row or with a gemm (beta = fresh ? 0 : 1);
//   t.grad_buffer<T>()             a zero-initialized buffer for scattered += (broadcast
//                                  sums, embedding rows, argmax).
// A backward reads the values of every input unless record() is told otherwise (Reads):
// declaring the inputs it does not read lets their memory go during the forward pass.
// Write only the gradients of inputs that require grad (any other would get a buffer
// nobody reads): check inputs[i].requires_grad(), which a one-input op may skip since
// record() keeps a backward only when some input requires grad. An optional input may be
// an undefined Tensor (linear's bias): check defined() first.
//
// Shared gradients: after pass_grad, several intermediate tensors' gradients may be one
// buffer (both inputs of a residual add). The helpers below keep that invisible: a
// gradient that any other tensor still holds (its handle or its values) is copied before
// it is written, so a backward always writes a buffer of its own. A leaf's gradient (a
// parameter's, a user tensor's) is never shared and always accumulates in place. So a
// backward takes its raw gradient pointers (grad_for_write, grad_buffer) after its
// pass_grad calls, and writes gradients only through these helpers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <new>
#include <type_traits>
#include <utility>
#include <vector>

#include "core/buffer_pool.hpp"
#include "core/tensor.hpp"

namespace qkv::core {

// The tensors an op listed in record(), in the same order: a vector whose memory comes
// from this thread's pool (core/buffer_pool.hpp), so that recording allocates nothing in
// the steady state. It converts from and to a std::vector<Tensor> (a copy).
struct Inputs : std::vector<Tensor, PoolAllocator<Tensor>> {
  using Base = std::vector<Tensor, PoolAllocator<Tensor>>;
  using Base::Base;
  Inputs() = default;
  Inputs(const std::vector<Tensor>& tensors) : Base(tensors.begin(), tensors.end()) {}
  operator std::vector<Tensor>() const { return {begin(), end()}; }
};

// The gradient function of an op: it receives the gradient of the op's output and the
// op's inputs, and adds into the inputs' gradients. Made from any callable (a lambda)
// like a std::function, but the callable lives in a block of this thread's pool instead
// of the heap, and it is move-only (a node owns its backward).
class BackwardFn {
 public:
  BackwardFn() noexcept = default;
  BackwardFn(std::nullptr_t) noexcept {}
  template <class F, class C = std::decay_t<F>,
            class = std::enable_if_t<!std::is_same_v<C, BackwardFn> &&
                                     std::is_invocable_v<C&, const Tensor&, const Inputs&>>>
  BackwardFn(F&& f) {
    void* block = small_allocate(sizeof(C));
    try {
      callable_ = new (block) C(std::forward<F>(f));
    } catch (...) {
      small_release(block, sizeof(C));
      throw;
    }
    kind_ = &kind_of<C>;
  }
  BackwardFn(BackwardFn&& other) noexcept
      : callable_(std::exchange(other.callable_, nullptr)), kind_(other.kind_) {}
  BackwardFn& operator=(BackwardFn&& other) noexcept {
    if (this != &other) {
      reset();
      callable_ = std::exchange(other.callable_, nullptr);
      kind_ = other.kind_;
    }
    return *this;
  }
  ~BackwardFn() { reset(); }

  void operator()(const Tensor& grad_output, const Inputs& inputs) const {
    kind_->call(callable_, grad_output, inputs);
  }
  explicit operator bool() const noexcept { return callable_ != nullptr; }

 private:
  // What the stored callable's type knows: how to call and destroy it, and its size.
  struct Kind {
    void (*call)(void*, const Tensor&, const Inputs&);
    void (*destroy)(void*) noexcept;
    std::size_t size;
  };
  template <class C> static constexpr Kind kind_of = {
      [](void* c, const Tensor& g, const Inputs& in) { (*static_cast<C*>(c))(g, in); },
      [](void* c) noexcept { static_cast<C*>(c)->~C(); }, sizeof(C)};

  void reset() noexcept {
    if (!callable_) return;
    kind_->destroy(callable_);
    small_release(callable_, kind_->size);
    callable_ = nullptr;
  }

  void* callable_ = nullptr;
  const Kind* kind_ = nullptr;
};

// Which inputs' values an op's backward reads, by index into its inputs; all by default.
// An input the backward does not read is still listed (its gradient is routed through
// it), but its values are released as soon as only such ops hold it: no Tensor handle
// (a layer's local, a hook's capture, a cache), and no op that reads it. Most of a
// training step's memory is the values kept for backward, and this drops those nobody
// reads: a linear's output that GELU's saved slope differentiates, a residual's addends.
// The node itself stays (its gradient and history), and an alias of the values (a
// reshape, the detached output an op saved for its own backward) keeps them; reading the
// node's values after the release throws std::logic_error naming both ops. Inputs past
// the 64th are always read.
//
//   record(y, "gelu", {x}, backward, Reads::none());          // reads its saved slope
//   record(y, "linear", {x, w, b}, backward, Reads::first(2));  // x and w, never b
//   record(y, "layer_norm", {x, w, b}, backward, Reads::only({1}));  // w: x̂ is saved
class Reads {
 public:
  static Reads all() { return Reads(0); }
  static Reads none() { return Reads(~std::uint64_t{0}); }
  static Reads first(std::size_t count) {
    return Reads(count >= 64 ? 0 : ~std::uint64_t{0} << count);
  }
  static Reads only(std::initializer_list<std::size_t> inputs) {
    std::uint64_t unread = ~std::uint64_t{0};
    for (std::size_t i : inputs)
      if (i < 64) unread &= ~(std::uint64_t{1} << i);
    return Reads(unread);
  }
  // Bit i set: the backward does not read input i's values.
  std::uint64_t unread() const { return unread_; }

 private:
  explicit Reads(std::uint64_t unread) : unread_(unread) {}
  std::uint64_t unread_;
};

// Attaches history to a freshly computed result. If grad mode is on and any input
// requires grad, `result` becomes a non-leaf that requires grad, keeps `inputs`, and
// runs `backward(grad_of_result, inputs)` during Tensor::backward(). Otherwise nothing is
// recorded (and `backward` is dropped). `op` names the op in error messages. `reads`
// names the inputs whose values the backward reads (see Reads).
void record(Tensor& result, const char* op, Inputs inputs, BackwardFn backward,
            Reads reads = Reads::all());

// Whether any of the inputs will need a gradient (grad mode on and one requires grad):
// an op skips saving what only its backward needs when this is false.
bool needs_grad(std::initializer_list<const Tensor*> inputs);

// Calls f(float{}) or f(double{}) by dtype, so that an op body is written once as a
// template over its element type T = decltype(tag).
template <class F> decltype(auto) dispatch(DType dtype, F&& f) {
  if (dtype == DType::f32) return f(float{});
  return f(double{});
}

// Where a backward writes the whole gradient of one input. A buffer that did not exist
// yet is allocated uninitialized and marked fresh: every element must then be written
// with = (store_grad does that). Otherwise it already holds gradient: add with +=.
template <class T> struct GradTarget {
  T* data;
  bool fresh;
};
// T must be t's dtype (checked).
template <class T> GradTarget<T> grad_for_write(const Tensor& t);

// g[i] = value(i) into a fresh buffer, g[i] += value(i) otherwise, for i < n. The branch
// is outside the loops so that both vectorize.
template <class T, class F> void store_grad(T* g, bool fresh, std::size_t n, F&& value) {
  if (fresh) {
    for (std::size_t i = 0; i < n; ++i) g[i] = value(i);
  } else {
    for (std::size_t i = 0; i < n; ++i) g[i] += value(i);
  }
}

// Adds value(i) to every element i of t's gradient (t.numel() elements).
template <class T, class F> void add_to_grad(const Tensor& t, F&& value) {
  const GradTarget<T> g = grad_for_write<T>(t);
  store_grad(g.data, g.fresh, t.numel(), value);
}

// Adds grad (t's dtype and element count; its shape may differ, as through a reshape) to
// t's gradient. When t is an intermediate tensor (it has a backward still to run) without
// a gradient yet, t's gradient becomes grad's buffer, shared instead of copied; a leaf's
// gradient gets a copy, or grad added into it.
void pass_grad(const Tensor& t, const Tensor& grad);

}  // namespace qkv::core
