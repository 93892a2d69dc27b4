// Tensor handles and graph behaviour: sharing, accumulation, diamonds, NoGrad, detach,
// the freed-graph and misuse errors.
#include <doctest/doctest.h>

#include <cmath>
#include <stdexcept>

#include "core/node.hpp"  // the graph-freed test watches nodes directly
#include "core/ops.hpp"
#include "core/random.hpp"
#include "core/tensor.hpp"

using namespace qkv::core;

TEST_CASE("tensor: construction, shape and values") {
  Tensor t = Tensor::from_vector(std::vector<float>{1, 2, 3, 4, 5, 6}, {2, 3});
  CHECK(t.shape() == Shape{2, 3});
  CHECK(t.numel() == 6);
  CHECK(t.dim() == 2);
  CHECK(t.size(-1) == 3);
  CHECK(t.dtype() == DType::f32);
  CHECK(t.at({1, 2}) == 6.0);
  CHECK(Tensor::zeros({4}).to_vector() == std::vector<double>(4, 0.0));
  CHECK(Tensor::full({2}, 2.5, DType::f64).to_vector() == std::vector<double>{2.5, 2.5});
  CHECK(Tensor::scalar(3.0).item() == 3.0);
  CHECK(Tensor::scalar(3.0).shape().empty());
  Tensor d = t.to(DType::f64);
  CHECK(d.dtype() == DType::f64);
  CHECK(d.to_vector() == t.to_vector());
}

TEST_CASE("tensor: misuse errors name what is wrong") {
  CHECK_THROWS_WITH_AS(Tensor::from_vector(std::vector<float>{1, 2, 3}, {2, 2}),
                       doctest::Contains("3 values do not fill shape [2, 2]"), std::invalid_argument);
  Tensor t = Tensor::zeros({2, 2});
  CHECK_THROWS_WITH_AS(t.data<double>(), doctest::Contains("tensor is float32, asked for float64"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(t.item(), doctest::Contains("has 4 elements, not 1"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(t.size(2), doctest::Contains("axis 2 out of range"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(t.copy_(Tensor::zeros({3})), doctest::Contains("source shape [3] differs"),
                       std::invalid_argument);
}

TEST_CASE("autograd: a tensor used twice receives the sum of both gradients") {
  Tensor x = Tensor::from_vector(std::vector<double>{2.0, -3.0}, {2}).requires_grad_();
  sum(mul(x, x)).backward();  // d/dx Σ x² = 2x, through both operands of one op
  CHECK(x.grad().to_vector() == std::vector<double>{4.0, -6.0});
  x.zero_grad();
  Tensor y = mul(x, 3.0);
  sum(add(y, y)).backward();  // y used twice: 2 * 3
  CHECK(x.grad().to_vector() == std::vector<double>{6.0, 6.0});
}

TEST_CASE("autograd: diamond graph") {
  Tensor x = Tensor::scalar(1.5, DType::f64).requires_grad_();
  Tensor a = mul(x, 2.0);  // 2x
  Tensor b = exp(x);       // e^x
  Tensor top = mul(a, b);  // 2x e^x, d/dx = 2 e^x + 2x e^x
  top.backward();
  CHECK(x.grad().item() == doctest::Approx(2 * std::exp(1.5) * (1 + 1.5)).epsilon(1e-12));
}

TEST_CASE("autograd: gradients accumulate over two backward calls on separate graphs") {
  Tensor w = Tensor::from_vector(std::vector<double>{1.0, 2.0}, {2}).requires_grad_();
  sum(mul(w, 3.0)).backward();
  sum(mul(w, w)).backward();
  CHECK(w.grad().to_vector() == std::vector<double>{3.0 + 2.0, 3.0 + 4.0});
}

TEST_CASE("autograd: a long chain backpropagates without recursion") {
  Tensor x = Tensor::scalar(1.0, DType::f64).requires_grad_();
  Tensor y = x;
  for (int i = 0; i < 100000; ++i) y = add(y, 0.0);
  y.backward();
  CHECK(x.grad().item() == 1.0);
}

TEST_CASE("autograd: NoGrad records nothing, detach cuts history and shares values") {
  Tensor x = Tensor::ones({3}, DType::f64).requires_grad_();
  {
    NoGrad guard;
    CHECK_FALSE(grad_enabled());
    Tensor y = mul(x, 2.0);
    CHECK_FALSE(y.requires_grad());
    CHECK(y.is_leaf());
  }
  CHECK(grad_enabled());
  Tensor z = mul(x, 2.0);
  CHECK(z.requires_grad());
  CHECK_FALSE(z.is_leaf());
  Tensor d = z.detach();
  CHECK_FALSE(d.requires_grad());
  CHECK(d.is_leaf());
  d.data<double>()[0] = 7.0;  // shares storage with z
  CHECK(z.at({0}) == 7.0);
  Tensor w = mul(d, x);
  sum(w).backward();
  CHECK(x.grad().to_vector() == std::vector<double>{7.0, 2.0, 2.0});
}

TEST_CASE("autograd: intermediate gradients are released, leaf gradients kept") {
  Tensor x = Tensor::ones({2}, DType::f64).requires_grad_();
  Tensor y = mul(x, 2.0);
  sum(y).backward();
  CHECK(x.grad().defined());
  CHECK_FALSE(y.grad().defined());
}

TEST_CASE("autograd: errors for misuse of backward") {
  Tensor x = Tensor::ones({2}, DType::f64).requires_grad_();
  SUBCASE("non-scalar without a gradient") {
    CHECK_THROWS_WITH_AS(mul(x, 2.0).backward(), doctest::Contains("without a gradient"),
                         std::invalid_argument);
  }
  SUBCASE("a tensor that does not require grad") {
    Tensor c = Tensor::ones({1});
    CHECK_THROWS_WITH_AS(c.backward(), doctest::Contains("does not require grad"), std::logic_error);
  }
  SUBCASE("a second time through a freed graph") {
    Tensor y = exp(x);
    Tensor loss = sum(y);
    loss.backward();
    CHECK_THROWS_WITH_AS(loss.backward(), doctest::Contains("already freed"), std::logic_error);
    CHECK_THROWS_WITH_AS(sum(y).backward(), doctest::Contains("through 'exp' was already freed"),
                         std::logic_error);
  }
  SUBCASE("a gradient of the wrong shape") {
    CHECK_THROWS_WITH_AS(mul(x, 2.0).backward(Tensor::ones({3}, DType::f64)),
                         doctest::Contains("gradient of shape [3]"), std::invalid_argument);
  }
  SUBCASE("requires_grad_ on a non-leaf") {
    Tensor y = mul(x, 2.0);
    CHECK_THROWS_WITH_AS(y.requires_grad_(false), doctest::Contains("only leaf tensors"),
                         std::invalid_argument);
  }
}

TEST_CASE("autograd: the graph is freed (no reference cycle keeps it alive)") {
  std::weak_ptr<Node> watched;
  {
    Tensor x = Tensor::ones({4}, DType::f64).requires_grad_();
    Tensor y = softmax(exp(x));
    watched = detail::NodeAccess::node(y);
    Tensor loss = sum(mul(y, y));
    loss.backward();
  }
  CHECK(watched.expired());
  {  // a graph that is never backpropagated is released too
    Tensor x = Tensor::ones({4}, DType::f64).requires_grad_();
    Tensor y = tanh(layer_norm(x, Tensor(), Tensor()));
    watched = detail::NodeAccess::node(y);
  }
  CHECK(watched.expired());
}
