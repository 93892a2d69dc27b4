// The release of values no backward reads (core/op.hpp, Reads): a value whose only
// holders are ops that declared they do not read it goes back to the pool during the
// forward pass; a handle, a reading op or an alias keeps it; the gradients are those of the
// same graph with every value kept; a backward that reads what it declared it does not
// gets an error naming both ops.
#include <doctest/doctest.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "core/buffer_pool.hpp"
#include "core/node.hpp"
#include "core/op.hpp"
#include "core/ops.hpp"
#include "core/random.hpp"

using namespace qkv::core;

namespace {

// Expires once no node holds the tensor's values any more.
std::weak_ptr<Storage> values_of(const Tensor& t) { return detail::NodeAccess::node(t)->storage; }

// A pre-LN feed-forward block with a residual, in float64: the graph whose unread values
// the release is for (layer_norm's input, fc1's output, fc2's output).
struct Block {
  Tensor x, w1, b1, w2, b2;
  explicit Block(Rng& rng)
      : x(Tensor::randn({3, 5, 4}, rng, DType::f64).requires_grad_()),
        w1(Tensor::randn({8, 4}, rng, DType::f64).requires_grad_()),
        b1(Tensor::randn({8}, rng, DType::f64).requires_grad_()),
        w2(Tensor::randn({4, 8}, rng, DType::f64).requires_grad_()),
        b2(Tensor::randn({4}, rng, DType::f64).requires_grad_()) {}

  // The loss sum(r ⊙ (x + fc2(gelu(fc1(ln(x)))))); with `kept`, every intermediate keeps a
  // handle there, so nothing is released.
  Tensor loss(const Tensor& r, std::vector<Tensor>* kept) const {
    std::vector<Tensor> steps;
    steps.push_back(layer_norm(x, Tensor(), Tensor()));
    steps.push_back(linear(steps.back(), w1, b1));
    steps.push_back(gelu(steps.back()));
    steps.push_back(linear(steps.back(), w2, b2));
    steps.push_back(add(x, steps.back()));
    Tensor loss = sum(mul(steps.back(), r));
    if (kept) *kept = steps;
    return loss;
  }
  std::vector<Tensor> parameters() const { return {x, w1, b1, w2, b2}; }
};

// An op that declares it does not read its input, and then reads it in its backward.
Tensor sloppy_square(const Tensor& x) {
  Tensor y = Tensor::empty(x.shape(), x.dtype());
  const double* px = x.data<double>();
  double* py = y.data<double>();
  for (std::size_t i = 0; i < x.numel(); ++i) py[i] = px[i] * px[i];
  record(y, "sloppy_square", {x}, [](const Tensor& g, const Inputs& in) {
    const double* px = in[0].data<double>();
    const double* pg = g.data<double>();
    add_to_grad<double>(in[0], [&](std::size_t i) { return 2 * px[i] * pg[i]; });
  }, Reads::none());
  return y;
}

}  // namespace

TEST_CASE("release: a linear's output that only gelu consumes goes when its handle goes") {
  Rng rng(1);
  Block block(rng);
  Tensor h = linear(block.x, block.w1, block.b1);
  const std::weak_ptr<Storage> values = values_of(h);
  const Tensor y = gelu(h);
  CHECK_FALSE(values.expired());  // h is still a handle: it may be read
  const std::size_t cached = buffer_pool_stats().cached_bytes;
  h = Tensor();
  CHECK(values.expired());
  CHECK(buffer_pool_stats().cached_bytes >= cached + 3 * 5 * 8 * sizeof(double));  // pooled again
  // What linear's backward reads (its input and weight) stays, and the gradients arrive.
  sum(y).backward();
  CHECK(block.x.grad().defined());
  CHECK(block.w1.grad().defined());
  CHECK(block.b1.grad().defined());
}

TEST_CASE("release: a residual's branch and stream, which only add and layer_norm consume, go") {
  Rng rng(6);
  Block block(rng);
  Tensor stream = add(block.x, block.x);  // an add saves nothing of its own output
  Tensor branch = linear(block.x, block.w1, block.b1);
  branch = linear(branch, block.w2, block.b2);
  const std::weak_ptr<Storage> branch_values = values_of(branch);
  const std::weak_ptr<Storage> stream_values = values_of(stream);
  Tensor sum_of_both = add(stream, branch);
  const Tensor normalized = layer_norm(stream, Tensor(), Tensor());
  branch = Tensor();
  stream = Tensor();
  CHECK(branch_values.expired());
  CHECK(stream_values.expired());
  SUBCASE("sub reads its inputs: they stay") {
    Tensor kept = linear(block.x, block.w1, block.b1);
    const std::weak_ptr<Storage> kept_values = values_of(kept);
    const Tensor difference = sub(kept, kept);
    kept = Tensor();
    CHECK_FALSE(kept_values.expired());
  }
  sum(mul(sum_of_both, sum_of_both)).backward();
  CHECK(block.w2.grad().defined());
}

TEST_CASE("release: values a backward may read stay") {
  Rng rng(2);
  Block block(rng);
  Tensor h = linear(block.x, block.w1, block.b1);
  const std::weak_ptr<Storage> values = values_of(h);
  SUBCASE("an op that reads them (mul, by default all)") {
    const Tensor y = mul(h, h);
    h = Tensor();
    CHECK_FALSE(values.expired());
  }
  SUBCASE("a reading op beside an unread one, until the reader is gone") {
    const Tensor unread = gelu(h);
    Tensor reader = tanh(h);
    h = Tensor();
    CHECK_FALSE(values.expired());
    reader = Tensor();  // tanh's node goes, and its hold with it
    CHECK(values.expired());
  }
  SUBCASE("another handle (a hook's capture, a cache)") {
    const Tensor y = gelu(h);
    Tensor captured = h;
    h = Tensor();
    CHECK_FALSE(values.expired());
    CHECK(captured.to_vector().size() == 3 * 5 * 8);
    captured = Tensor();
    CHECK(values.expired());
  }
  SUBCASE("an alias sharing the values (a detached output an op saved)") {
    const Tensor y = gelu(h);
    const Tensor alias = h.detach();
    h = Tensor();
    CHECK_FALSE(values.expired());
    CHECK(alias.to_vector().size() == 3 * 5 * 8);
  }
  SUBCASE("under NoGrad nothing is recorded: the consumer holds nothing") {
    const NoGrad no_grad;
    const Tensor y = gelu(h);
    h = Tensor();
    CHECK(values.expired());  // gone with its handle, as any unused tensor
  }
}

TEST_CASE("release: a consumer whose history is gone no longer counts as a holder") {
  Rng rng(3);
  Block block(rng);
  const Tensor h = linear(block.x, block.w1, block.b1);
  SUBCASE("after its backward ran") {
    sum(gelu(h)).backward();
  }
  SUBCASE("destroyed without a backward") {
    const Tensor unused = gelu(h);
  }
  // Only h holds its node now: dropping a second handle must not release the values.
  Tensor copy = h;
  copy = Tensor();
  CHECK_NOTHROW(h.to_vector());
  Tensor moved = h;
  moved = std::move(copy);
  CHECK_NOTHROW(h.to_vector());
}

TEST_CASE("release: gradients are those of the same graph with every value kept") {
  Rng rng(4);
  const Block block(rng);
  const Tensor r = Tensor::randn({3, 5, 4}, rng, DType::f64);
  std::vector<Tensor> kept;
  block.loss(r, &kept).backward();
  std::vector<std::vector<double>> with_every_value;
  for (Tensor p : block.parameters()) {
    with_every_value.push_back(p.grad().to_vector());
    p.zero_grad();
  }
  kept.clear();
  block.loss(r, nullptr).backward();
  const std::vector<Tensor> parameters = block.parameters();
  for (std::size_t i = 0; i < parameters.size(); ++i) {
    CAPTURE(i);
    CHECK(parameters[i].grad().to_vector() == with_every_value[i]);
  }
}

TEST_CASE("release: the ops whose backward reads only g or what they saved let their input go") {
  // softmax and log_softmax keep their output, masked_fill its mask, dropout its scales,
  // max its argmax; sum, mean, the strided copies and concat need g alone.
  const std::vector<std::pair<const char*, Tensor (*)(const Tensor&)>> ops = {
      {"softmax", [](const Tensor& h) { return softmax(h); }},
      {"log_softmax", [](const Tensor& h) { return log_softmax(h); }},
      {"masked_fill", [](const Tensor& h) {
         static const Tensor m = Tensor::from_vector(std::vector<double>{0, 1, 0, 0, 1, 0}, {1, 6});
         return masked_fill(h, m, -2.0);
       }},
      {"dropout", [](const Tensor& h) {
         Rng rng(9);
         return dropout(h, 0.5, true, rng);
       }},
      {"sum", [](const Tensor& h) { return sum(h, {1}); }},
      {"mean", [](const Tensor& h) { return mean(h, {0}, true); }},
      {"max", [](const Tensor& h) { return max(h, {1}); }},
      {"transpose", [](const Tensor& h) { return transpose(h, 0, 1); }},
      {"slice", [](const Tensor& h) { return slice(h, 1, 1, 4); }},
      {"concat", [](const Tensor& h) { return concat({h, h}, 0); }}};
  for (const auto& [name, op] : ops) {
    CAPTURE(name);
    Rng rng(11);
    Tensor x = Tensor::randn({5, 3}, rng, DType::f64).requires_grad_();
    Tensor w = Tensor::randn({6, 3}, rng, DType::f64).requires_grad_();
    auto loss_and_values = [&](bool keep) {
      Tensor h = linear(x, w);  // its own backward reads x and w, never h
      const std::weak_ptr<Storage> values = values_of(h);
      const Tensor y = op(h);
      if (!keep) h = Tensor();
      const bool released = values.expired();
      Rng weights(12);
      sum(mul(y, Tensor::randn(y.shape(), weights, DType::f64))).backward();
      return released;
    };
    CHECK_FALSE(loss_and_values(true));
    const std::vector<double> dx = x.grad().to_vector(), dw = w.grad().to_vector();
    x.zero_grad();
    w.zero_grad();
    CHECK(loss_and_values(false));
    CHECK(x.grad().to_vector() == dx);
    CHECK(w.grad().to_vector() == dw);
  }
}

TEST_CASE("release: a backward that reads an input it declared unread gets an error naming both ops") {
  Rng rng(5);
  Tensor x = Tensor::randn({4}, rng, DType::f64).requires_grad_();
  Tensor h = mul(x, 3.0);
  const Tensor loss = sum(sloppy_square(h));
  h = Tensor();
  std::string message;
  try {
    loss.backward();
  } catch (const std::logic_error& error) {
    message = error.what();
  }
  CHECK(message.find("the values of the output of 'mul' (shape [4]) were released") != std::string::npos);
  CHECK(message.find("'sloppy_square' declared in record() that its backward does not read them") !=
        std::string::npos);
}
