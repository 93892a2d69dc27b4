// The op-author API (core/op.hpp): record hands the listed inputs to the backward,
// add_to_grad / grad_for_write write a fresh gradient and add to an existing one,
// dispatch picks the element type, and Tensor::id() is an identity.
#include <doctest/doctest.h>

#include <memory>
#include <stdexcept>
#include <type_traits>
#include <vector>

#include "core/op.hpp"
#include "core/ops.hpp"

using namespace qkv::core;

namespace {

// y = a * b elementwise (same shapes), written against the public op API only.
Tensor product(const Tensor& a, const Tensor& b, std::vector<Tensor>* seen = nullptr) {
  Tensor y = Tensor::empty(a.shape(), DType::f64);
  for (std::size_t i = 0; i < a.numel(); ++i) y.data<double>()[i] = a.data<double>()[i] * b.data<double>()[i];
  record(y, "product", {a, b}, [seen](const Tensor& g, const Inputs& in) {
    if (seen) *seen = in;
    const double* pg = g.data<double>();
    const double* pa = in[0].data<double>();
    const double* pb = in[1].data<double>();
    if (in[0].requires_grad()) add_to_grad<double>(in[0], [&](std::size_t i) { return pg[i] * pb[i]; });
    if (in[1].requires_grad()) add_to_grad<double>(in[1], [&](std::size_t i) { return pg[i] * pa[i]; });
  });
  return y;
}

}  // namespace

TEST_CASE("op: the backward receives the inputs given to record, in order") {
  Tensor a = Tensor::from_vector(std::vector<double>{1, 2, 3}, {3}).requires_grad_();
  Tensor b = Tensor::from_vector(std::vector<double>{4, 5, 6}, {3}).requires_grad_();
  std::vector<Tensor> seen;
  sum(product(a, b, &seen)).backward();
  REQUIRE(seen.size() == 2);
  CHECK(seen[0].same(a));
  CHECK(seen[1].same(b));
  CHECK(a.grad().to_vector() == std::vector<double>{4, 5, 6});
  CHECK(b.grad().to_vector() == std::vector<double>{1, 2, 3});
}

TEST_CASE("op: add_to_grad writes a first gradient and adds to an existing one") {
  Tensor a = Tensor::from_vector(std::vector<double>{1, 2}, {2}).requires_grad_();
  Tensor b = Tensor::from_vector(std::vector<double>{3, -1}, {2});
  SUBCASE("one use: the fresh buffer holds exactly the contribution") {
    sum(product(a, b)).backward();
    CHECK(a.grad().to_vector() == std::vector<double>{3, -1});
    CHECK_FALSE(b.grad().defined());  // b does not require grad: no buffer is made for it
  }
  SUBCASE("two uses in one graph and a second backward: contributions add up") {
    sum(add(product(a, b), product(a, b))).backward();
    CHECK(a.grad().to_vector() == std::vector<double>{6, -2});
    sum(product(a, b)).backward();
    CHECK(a.grad().to_vector() == std::vector<double>{9, -3});
  }
}

TEST_CASE("op: grad_for_write is fresh only while no gradient exists") {
  Tensor t = Tensor::zeros({3}, DType::f32);
  CHECK_THROWS_WITH_AS(grad_for_write<double>(t), doctest::Contains("tensor is float32, asked for float64"),
                       std::invalid_argument);
  CHECK_FALSE(t.grad().defined());  // the refused call left no buffer behind
  const GradTarget<float> first = grad_for_write<float>(t);
  CHECK(first.fresh);
  for (std::size_t i = 0; i < 3; ++i) first.data[i] = 1.5f;
  const GradTarget<float> second = grad_for_write<float>(t);
  CHECK_FALSE(second.fresh);
  CHECK(second.data == first.data);
  store_grad(second.data, second.fresh, 3, [](std::size_t i) { return static_cast<float>(i); });
  CHECK(t.grad().to_vector() == std::vector<double>{1.5, 2.5, 3.5});
}

TEST_CASE("op: record keeps nothing when no input requires grad or under NoGrad") {
  auto calls = std::make_shared<int>(0);
  auto op = [&](const Tensor& x) {
    Tensor y = x.clone();
    record(y, "copy", {x}, [calls](const Tensor&, const Inputs&) { ++*calls; });
    return y;
  };
  Tensor plain = Tensor::ones({2}, DType::f64);
  Tensor y = op(plain);
  CHECK_FALSE(y.requires_grad());
  CHECK(y.is_leaf());
  CHECK(calls.use_count() == 1);  // the backward (and what it captured) was dropped
  Tensor x = Tensor::ones({2}, DType::f64).requires_grad_();
  {
    NoGrad no_grad;
    CHECK_FALSE(op(x).requires_grad());
    CHECK_FALSE(needs_grad({&x}));
  }
  CHECK(needs_grad({&plain, &x}));
  sum(op(x)).backward();
  CHECK(*calls == 1);
}

TEST_CASE("op: a backward's captures are released after backward and with an unused graph") {
  auto saved = std::make_shared<int>(0);  // stands for a value a backward keeps
  auto op = [&](const Tensor& x) {
    Tensor y = x.clone();
    record(y, "keep", {x}, [saved](const Tensor& g, const Inputs& in) {
      add_to_grad<double>(in[0], [&](std::size_t i) { return g.data<double>()[i]; });
    });
    return y;
  };
  Tensor x = Tensor::ones({2}, DType::f64).requires_grad_();
  {
    Tensor loss = sum(softmax(op(x)));
    CHECK(saved.use_count() == 2);
    loss.backward();
    CHECK(saved.use_count() == 1);
  }
  {
    Tensor unused = layer_norm(op(x), Tensor(), Tensor());
    CHECK(saved.use_count() == 2);
  }
  CHECK(saved.use_count() == 1);
}

TEST_CASE("op: BackwardFn holds a move-only callable, moves it and destroys it once") {
  auto alive = std::make_shared<int>(0);
  auto owned = std::make_unique<int>(3);
  BackwardFn backward = [alive, owned = std::move(owned)](const Tensor&, const Inputs&) { *alive += *owned; };
  CHECK(static_cast<bool>(backward));
  CHECK(alive.use_count() == 2);
  BackwardFn moved = std::move(backward);
  CHECK_FALSE(static_cast<bool>(backward));
  moved(Tensor(), Inputs{});
  CHECK(*alive == 3);
  moved = nullptr;
  CHECK_FALSE(static_cast<bool>(moved));
  CHECK(alive.use_count() == 1);  // the captures went with the callable
}

TEST_CASE("op: Inputs converts from and to a std::vector<Tensor>") {
  const std::vector<Tensor> tensors{Tensor::zeros({1}), Tensor::ones({2})};
  const Inputs inputs = tensors;
  REQUIRE(inputs.size() == 2);
  CHECK(inputs[1].same(tensors[1]));
  const std::vector<Tensor> back = inputs;
  CHECK(back[0].same(tensors[0]));
}

TEST_CASE("op: dispatch calls the body with the dtype's element type") {
  auto width = [](DType dtype) {
    return dispatch(dtype, [](auto tag) { return sizeof(decltype(tag)); });
  };
  CHECK(width(DType::f32) == sizeof(float));
  CHECK(width(DType::f64) == sizeof(double));
  const bool is_double = dispatch(DType::f64, [](auto tag) { return std::is_same_v<decltype(tag), double>; });
  CHECK(is_double);
}

TEST_CASE("tensor: id() is shared by handles of one tensor and differs between tensors") {
  Tensor a = Tensor::zeros({2});
  Tensor copy = a;
  CHECK(copy.id() == a.id());
  CHECK(a.detach().id() != a.id());  // same values, another tensor
  CHECK(Tensor::zeros({2}).id() != a.id());
  CHECK(Tensor().id() == nullptr);
}
