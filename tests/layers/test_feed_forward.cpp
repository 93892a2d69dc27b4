// FeedForward: shapes, parameter names, the composition fc2(act(fc1(x))) for both
// activations, and gradients.
#include <doctest/doctest.h>

#include "core/ops.hpp"
#include "layers/feed_forward.hpp"
#include "layer_test_util.hpp"

using namespace qkv;
using namespace qkv::layers;
using core::DType;
using core::Tensor;

namespace {

FeedForwardOptions options(Activation activation) {
  FeedForwardOptions o;
  o.dim = 6;
  o.hidden = 10;
  o.activation = activation;
  return o;
}

}  // namespace

TEST_CASE("feed_forward: shapes, names and parameter count") {
  core::Rng rng(1);
  FeedForward ffn(options(Activation::gelu), rng);
  CHECK(ffn.forward(test::random_input({2, 3, 6}, 2)).shape() == core::Shape{2, 3, 6});
  CHECK(ffn.parameter_count() == (6 * 10 + 10) + (10 * 6 + 6));
  std::vector<std::string> names;
  for (const auto& p : ffn.named_parameters()) names.push_back(p.name);
  CHECK(names == std::vector<std::string>{"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"});
  CHECK_THROWS_WITH_AS(FeedForward(FeedForwardOptions{}, rng),
                       doctest::Contains("dim and hidden must be positive"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(parse_activation("swish"), doctest::Contains("unknown activation 'swish'"),
                       std::invalid_argument);
}

TEST_CASE("feed_forward: computes fc2(act(fc1(x)))") {
  for (Activation activation : {Activation::gelu, Activation::relu}) {
    CAPTURE(activation_name(activation));
    core::Rng rng(3);
    FeedForward ffn(options(activation), rng);
    const auto state = ffn.state();
    const Tensor x = test::random_input({2, 3, 6}, 4);
    Tensor h = core::linear(x, state.at("fc1.weight"), state.at("fc1.bias"));
    h = activation == Activation::gelu ? core::gelu(h) : core::relu(h);
    const Tensor expected = core::linear(h, state.at("fc2.weight"), state.at("fc2.bias"));
    CHECK(test::max_abs_diff(ffn.forward(x), expected) == 0.0);
  }
}

TEST_CASE("feed_forward: gradients match finite differences") {
  for (Activation activation : {Activation::gelu, Activation::relu}) {
    CAPTURE(activation_name(activation));
    core::Rng rng(5);
    FeedForward ffn(options(activation), rng);
    ffn.to(DType::f64);
    std::vector<Tensor> inputs = ffn.parameters();
    inputs.push_back(test::random_input({2, 2, 6}, 6, DType::f64));
    test::check_gradients("FeedForward",
                          [&](const std::vector<Tensor>& in) { return ffn.forward(in.back()); }, inputs);
  }
}
