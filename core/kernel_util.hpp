// Helpers shared by core's op files (internal to core/): shape checks with messages that
// name the op, and strided loops for broadcasting and reductions. The op-author API
// itself (record, dispatch, gradients) is public, in core/op.hpp.
#pragma once

#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/op.hpp"
#include "core/parallel.hpp"
#include "core/tensor.hpp"

namespace qkv::core::detail {

[[noreturn]] inline void shape_error(const char* op, const std::string& what, const Shape& a,
                                     const Shape& b) {
  throw std::invalid_argument(std::string(op) + ": " + what + " (shapes " + shape_str(a) +
                              " and " + shape_str(b) + ")");
}

[[noreturn]] inline void arg_error(const char* op, const std::string& what) {
  throw std::invalid_argument(std::string(op) + ": " + what);
}

inline void check_defined(const char* op, const Tensor& t, const char* name) {
  if (!t.defined()) arg_error(op, std::string(name) + " is an undefined tensor");
}

inline void check_same_dtype(const char* op, const Tensor& a, const Tensor& b) {
  if (a.dtype() != b.dtype())
    throw std::invalid_argument(std::string(op) + ": dtypes differ (" + dtype_name(a.dtype()) +
                                " " + shape_str(a.shape()) + " and " + dtype_name(b.dtype()) +
                                " " + shape_str(b.shape()) + ")");
}

inline std::size_t normalize_axis(const char* op, int axis, std::size_t rank) {
  const int r = static_cast<int>(rank);
  const int a = axis < 0 ? axis + r : axis;
  if (a < 0 || a >= r)
    arg_error(op, "axis " + std::to_string(axis) + " out of range for rank " + std::to_string(rank));
  return static_cast<std::size_t>(a);
}

using Strides = std::vector<std::size_t>;

inline Strides contiguous_strides(const Shape& shape) {
  Strides s(shape.size());
  std::size_t step = 1;
  for (std::size_t i = shape.size(); i-- > 0;) {
    s[i] = step;
    step *= shape[i];
  }
  return s;
}

// Strides that read a tensor of shape `in` as if broadcast (numpy rules, aligned right) to
// `out`: broadcast axes get stride 0.
inline Strides broadcast_strides(const Shape& in, const Shape& out) {
  const Strides own = contiguous_strides(in);
  Strides s(out.size(), 0);
  const std::size_t offset = out.size() - in.size();
  for (std::size_t i = 0; i < in.size(); ++i)
    s[offset + i] = in[i] == 1 ? 0 : own[i];
  return s;
}

// numpy broadcast of two shapes, or a shape error naming the op.
inline Shape broadcast_shape(const char* op, const Shape& a, const Shape& b) {
  const std::size_t rank = std::max(a.size(), b.size());
  Shape out(rank);
  for (std::size_t i = 0; i < rank; ++i) {
    const std::size_t da = i < rank - a.size() ? 1 : a[i - (rank - a.size())];
    const std::size_t db = i < rank - b.size() ? 1 : b[i - (rank - b.size())];
    if (da != db && da != 1 && db != 1) shape_error(op, "shapes do not broadcast", a, b);
    out[i] = da == 1 ? db : da;
  }
  return out;
}

// Visits every element of `shape` in row-major order as f(index, offset_a, offset_b), where
// the offsets follow strides sa and sb. The last axis is the inner loop.
template <class F>
void strided_loop(const Shape& shape, const Strides& sa, const Strides& sb, F&& f) {
  const std::size_t n = shape_numel(shape);
  if (n == 0) return;
  const std::size_t rank = shape.size();
  if (rank == 0) {
    f(std::size_t{0}, std::size_t{0}, std::size_t{0});
    return;
  }
  const std::size_t inner = shape[rank - 1], step_a = sa[rank - 1], step_b = sb[rank - 1];
  std::vector<std::size_t> index(rank, 0);
  std::size_t oa = 0, ob = 0;
  for (std::size_t base = 0; base < n; base += inner) {
    for (std::size_t j = 0; j < inner; ++j) f(base + j, oa + j * step_a, ob + j * step_b);
    for (std::size_t d = rank - 1; d-- > 0;) {
      oa += sa[d];
      ob += sb[d];
      if (++index[d] < shape[d]) break;
      oa -= sa[d] * shape[d];
      ob -= sb[d] * shape[d];
      index[d] = 0;
    }
  }
}

// Elementwise work worth a thread: below this many elements a pass runs on one. Waking
// the pool's worker costs about as much as a vectorized pass over tens of thousands of
// elements, so at 32768 the tiny size's GELU (69,632 elements) split and two threads ran
// slower than one (1.48-1.63 against 1.31-1.39 ms a step); at 65536 it runs on one.
constexpr std::size_t kParallelElements = 65536;

// body(begin, end) over [0, n) split over the threads at multiples of 64 elements (whole
// SIMD blocks, so vectorized kernels treat every element as on one thread).
template <class F> void parallel_blocks(std::size_t n, F&& body) {
  constexpr std::size_t block = 64;
  const std::size_t blocks = (n + block - 1) / block;
  parallel_for(blocks, kParallelElements / block, [&](std::size_t begin, std::size_t end) {
    body(begin * block, std::min(end * block, n));
  });
}

// body(begin, end) over rows of n elements each, split over the threads.
template <class F> void parallel_rows(std::size_t rows, std::size_t n, F&& body) {
  parallel_for(rows, std::max<std::size_t>(1, kParallelElements / (n ? n : 1)), body);
}

// A scratch array of this thread's, grown when needed and kept, so that a kernel's
// per-row scratch allocates nothing in the steady state. `slot` tells apart the arrays
// one kernel needs at once.
template <class T> T* thread_scratch(std::size_t slot, std::size_t count) {
  thread_local std::vector<T> buffers[4];
  std::vector<T>& buffer = buffers[slot];
  if (buffer.size() < count) buffer.resize(count);
  return buffer.data();
}

}  // namespace qkv::core::detail
