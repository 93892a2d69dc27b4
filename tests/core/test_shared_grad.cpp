// Shared gradients (core/op.hpp): pass_grad lets an intermediate tensor's gradient be the
// output's own buffer (add, sub's first input, reshape) instead of a copy. Held to the
// copying reference: the same gradients bit for bit, a shared buffer never written while
// another tensor holds it, a user's gradient and a user-held one never changed under
// them, and leaves accumulating in place as before.
#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "core/op.hpp"
#include "core/ops.hpp"
#include "tests/core/gradcheck_util.hpp"

using namespace qkv::core;
using qkv::test::check_gradients;
using qkv::test::rand64;

namespace {

using Add = Tensor (*)(const Tensor&, const Tensor&);

Tensor shared_add(const Tensor& a, const Tensor& b) { return add(a, b); }

// a + b (same shapes, double) whose backward copies the gradient into each input, as add
// did before pass_grad: the reference.
Tensor copying_add(const Tensor& a, const Tensor& b) {
  Tensor y = Tensor::empty(a.shape(), DType::f64);
  for (std::size_t i = 0; i < y.numel(); ++i)
    y.data<double>()[i] = a.data<double>()[i] + b.data<double>()[i];
  record(y, "copying_add", {a, b}, [](const Tensor& g, const Inputs& in) {
    const double* pg = g.data<double>();
    for (const Tensor& t : in)
      if (t.requires_grad()) add_to_grad<double>(t, [pg](std::size_t i) { return pg[i]; });
  });
  return y;
}

// The leaves' gradients after the backward of the loss that `build` makes from them with
// `plus` as its addition.
using Build = std::function<Tensor(Add plus, const std::vector<Tensor>& leaves)>;
std::vector<std::vector<double>> leaf_grads(const Build& build, Add plus) {
  std::vector<Tensor> leaves = {rand64({2, 3}, 1).requires_grad_(), rand64({2, 3}, 2).requires_grad_()};
  build(plus, leaves).backward();
  std::vector<std::vector<double>> grads;
  for (const Tensor& leaf : leaves) grads.push_back(leaf.grad().to_vector());
  return grads;
}

void check_as_copying(const std::string& graph, const Build& build) {
  CAPTURE(graph);
  CHECK(leaf_grads(build, shared_add) == leaf_grads(build, copying_add));
}

// The identity, whose backward records the address of the gradient it receives (without
// holding it) and passes it on.
Tensor probe(const Tensor& x, std::vector<const double*>& seen) {
  Tensor y = x.clone();
  record(y, "probe", {x}, [&seen](const Tensor& g, const Inputs& in) {
    seen.push_back(g.data<double>());
    pass_grad(in[0], g);
  });
  return y;
}

// The identity, whose backward keeps a handle to the gradient it receives, as a user's op
// might, and a copy of its values at that moment, then passes it on.
struct Held {
  std::vector<Tensor> grads;
  std::vector<std::vector<double>> values;
};
Tensor hold(const Tensor& x, Held& held) {
  Tensor y = x.clone();
  record(y, "hold", {x}, [&held](const Tensor& g, const Inputs& in) {
    held.grads.push_back(g);
    held.values.push_back(g.to_vector());
    pass_grad(in[0], g);
  });
  return y;
}

}  // namespace

TEST_CASE("pass_grad: gradients equal the copying reference bit for bit") {
  const Tensor r = rand64({2, 3}, 7);
  check_as_copying("residual stream", [](Add plus, const std::vector<Tensor>& in) {
    const Tensor x = mul(in[0], 1.5);
    const Tensor h1 = plus(x, tanh(x));              // x feeds the add and tanh
    const Tensor h2 = plus(h1, mul(h1, in[1]));      // h1 feeds the add and mul
    return sum(mul(h2, h2));
  });
  check_as_copying("both inputs of one add", [](Add plus, const std::vector<Tensor>& in) {
    const Tensor x = exp(in[0]);
    return sum(mul(plus(x, x), in[1]));
  });
  // a's gradient is shared with b's by the add, and mul(a, a) adds into a's: the walk
  // runs the second term's backward first, so in one order the add's runs first (and
  // mul's must copy the shared buffer), in the other mul's.
  for (const bool add_first : {true, false}) {
    CAPTURE(add_first);
    check_as_copying("accumulated after sharing", [r, add_first](Add plus, const std::vector<Tensor>& in) {
      const Tensor a = tanh(in[0]);
      const Tensor shared = sum(mul(plus(a, mul(in[0], in[1])), r));
      const Tensor squares = sum(mul(a, a));
      return add_first ? add(squares, shared) : add(shared, squares);
    });
  }
  check_as_copying("a leaf and an intermediate", [r](Add plus, const std::vector<Tensor>& in) {
    const Tensor a = exp(in[1]);
    return sum(mul(plus(plus(in[0], a), a), r));
  });
  check_as_copying("through reshapes", [](Add plus, const std::vector<Tensor>& in) {
    const Tensor x = exp(in[0]);
    const Tensor y = plus(reshape(x, {3, 2}), reshape(mul(x, in[1]), {3, 2}));
    return sum(mul(y, reshape(x, {3, 2})));
  });
}

TEST_CASE("pass_grad: sub and a broadcast add pass the gradient on, exactly") {
  const Tensor r = rand64({2, 3}, 7);
  check_as_copying("sub of one tensor from itself", [](Add, const std::vector<Tensor>& in) {
    const Tensor x = exp(in[0]);
    return sum(mul(add(sub(x, x), x), in[1]));  // d/dx = v: the shared g cancelled by -g
  });
  // The copying twin of a broadcast add: the row spread to the full shape by a mul (whose
  // backward sums it back through the same strides), then added with copies.
  for (const bool full_first : {true, false}) {
    CAPTURE(full_first);
    check_as_copying("broadcast add", [r, full_first](Add plus, const std::vector<Tensor>& in) {
      const Tensor x = mul(in[0], 2.0);          // (2, 3), intermediate
      const Tensor row = tanh(sum(in[1], {0}));  // (3)
      const Tensor y = plus == copying_add ? copying_add(x, mul(row, Tensor::ones({2, 3}, DType::f64)))
                       : full_first        ? add(x, row)
                                           : add(row, x);
      return sum(mul(add(y, x), r));
    });
    check_gradients("broadcast add", [full_first](const std::vector<Tensor>& in) {
      const Tensor x = mul(in[0], 2.0);
      const Tensor row = tanh(in[1]);
      return full_first ? sub(add(x, row), mul(x, x)) : add(row, add(x, x));
    }, {rand64({2, 3}, 3), rand64({3}, 4)});
  }
}

TEST_CASE("pass_grad: backward through shared gradients matches finite differences") {
  check_gradients("add/sub/reshape chain", [](const std::vector<Tensor>& in) {
    const Tensor x = tanh(in[0]);                                   // (2, 3)
    const Tensor y = add(x, reshape(exp(in[1]), {2, 3}));           // in[1] is (3, 2)
    const Tensor z = sub(add(y, x), mul(y, y));
    return add(reshape(z, {6}), reshape(sub(x, z), {6}));
  }, {rand64({2, 3}, 5), rand64({3, 2}, 6)});
}

TEST_CASE("pass_grad: both inputs of an add receive one buffer, a leaf its own") {
  const Tensor w = rand64({2, 3}, 1).requires_grad_();
  std::vector<const double*> seen;
  const Tensor a = probe(exp(w), seen);
  const Tensor b = probe(tanh(w), seen);
  sum(mul(add(a, b), rand64({2, 3}, 2))).backward();
  REQUIRE(seen.size() == 2);
  CHECK(seen[0] == seen[1]);  // no copy: the add's output gradient, passed to both
  std::vector<const double*> leaf_seen;
  const Tensor v = rand64({2, 3}, 3).requires_grad_();
  sum(add(v, probe(exp(w), leaf_seen))).backward();
  REQUIRE(leaf_seen.size() == 1);
  CHECK(v.grad().data<double>() != leaf_seen[0]);  // the leaf got a copy
  CHECK(v.grad().to_vector() == std::vector<double>(6, 1.0));
}

TEST_CASE("pass_grad: a gradient someone holds is never written under them") {
  const Tensor r = rand64({2, 3}, 7);
  for (const bool hold_first : {true, false}) {
    CAPTURE(hold_first);
    Held held;
    // hold's gradient becomes a's and b's, and mul(a, a) adds into a's while held keeps it
    // (when hold's backward runs first).
    const Build build = [r, hold_first, &held](Add plus, const std::vector<Tensor>& in) {
      const Tensor a = tanh(in[0]);
      const Tensor shared = sum(mul(plus(hold(a, held), mul(in[0], in[1])), r));
      const Tensor squares = sum(mul(a, a));
      return hold_first ? add(squares, shared) : add(shared, squares);
    };
    CHECK(leaf_grads(build, shared_add) == leaf_grads(build, copying_add));
    REQUIRE(held.grads.size() == 2);
    for (std::size_t i = 0; i < held.grads.size(); ++i) CHECK(held.grads[i].to_vector() == held.values[i]);
  }
}

TEST_CASE("pass_grad: the gradient a user gives backward is read, never written") {
  const Tensor w = rand64({2, 3}, 1).requires_grad_();
  const Tensor x = exp(w);
  const Tensor y = add(add(x, tanh(w)), mul(x, x));  // x's shared gradient gains mul's
  const Tensor g = rand64({2, 3}, 9);
  const std::vector<double> before = g.to_vector();
  y.backward(g);
  CHECK(g.to_vector() == before);
  const std::vector<double> vx = x.to_vector(), gv = g.to_vector();
  const std::vector<double> dw = w.grad().to_vector();
  for (std::size_t i = 0; i < 6; ++i) {
    const double tw = std::tanh(w.to_vector()[i]);
    CHECK(dw[i] == doctest::Approx(gv[i] * (vx[i] + 1 - tw * tw + 2 * vx[i] * vx[i])));
  }
}

TEST_CASE("pass_grad: a leaf's gradient accumulates in place, as a held w.grad() sees") {
  const Tensor w = rand64({3}, 1).requires_grad_();
  sum(add(w, w)).backward();
  const Tensor held = w.grad();
  const double* buffer = held.data<double>();
  sum(add(w, mul(w, 3.0))).backward();
  CHECK(w.grad().data<double>() == buffer);
  CHECK(held.to_vector() == std::vector<double>(3, 6.0));
}

TEST_CASE("pass_grad: a gradient of another dtype or size is refused") {
  const Tensor x = mul(rand64({2, 3}, 1).requires_grad_(), 2.0);
  CHECK_THROWS_WITH_AS(pass_grad(x, Tensor::ones({2, 3}, DType::f32)),
                       doctest::Contains("gradient of shape [2, 3] (float32) for a tensor of shape [2, 3] (float64)"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(pass_grad(x, Tensor::ones({5}, DType::f64)),
                       doctest::Contains("expected the tensor's dtype and element count"),
                       std::invalid_argument);
}
