// The custom-layer example: the silu op's value and hand-written gradient, GatedFfn's
// shapes, value and gradients, its registration by name, and the demo's falling loss.
#include <doctest/doctest.h>

#include <cmath>
#include <numeric>
#include <string>
#include <vector>

#include "core/ops.hpp"
#include "examples/custom_layer/gated_ffn.hpp"
#include "examples/custom_layer/silu.hpp"
#include "examples/custom_layer/train_demo.hpp"
#include "layers/build_model.hpp"
#include "tests/layers/layer_test_util.hpp"

using namespace qkv;
using core::DType;
using core::Tensor;

TEST_CASE("silu: value is x * sigmoid(x)") {
  const Tensor x = Tensor::from_vector(std::vector<float>{-3, -0.5f, 0, 0.5f, 3}, {5});
  const std::vector<double> y = example::silu(x).to_vector();
  for (std::size_t i = 0; i < 5; ++i) {
    const double v = x.to_vector()[i];
    CHECK(y[i] == doctest::Approx(v / (1 + std::exp(-v))).epsilon(1e-6));
  }
}

TEST_CASE("silu: hand-written backward matches finite differences") {
  test::check_gradients("silu", [](const std::vector<Tensor>& in) { return example::silu(in[0]); },
                        {test::random_input({3, 7}, 1, DType::f64)});
  // Used twice, the gradients add up (the backward accumulates).
  test::check_gradients("silu twice",
                        [](const std::vector<Tensor>& in) {
                          return core::mul(example::silu(in[0]), in[0]);
                        },
                        {test::random_input({4}, 2, DType::f64)});
}

TEST_CASE("gated_ffn: shapes, names, count and value") {
  core::Rng rng(3);
  example::GatedFfn ffn(6, 10, rng);
  std::vector<std::string> names;
  for (const auto& p : ffn.named_parameters()) names.push_back(p.name);
  CHECK(names == std::vector<std::string>{"gate.weight", "gate.bias", "up.weight", "up.bias",
                                          "down.weight", "down.bias"});
  CHECK(ffn.parameter_count() == 2 * (6 * 10 + 10) + (10 * 6 + 6));
  const Tensor x = test::random_input({2, 3, 6}, 4);
  const Tensor y = ffn.forward(x);
  CHECK(y.shape() == core::Shape{2, 3, 6});
  const auto w = ffn.state();
  const Tensor gate = core::linear(x, w.at("gate.weight"), w.at("gate.bias"));
  const Tensor up = core::linear(x, w.at("up.weight"), w.at("up.bias"));
  const Tensor swish = core::div(gate, core::add(core::exp(core::neg(gate)), 1.0));
  const Tensor expected = core::linear(core::mul(swish, up), w.at("down.weight"), w.at("down.bias"));
  CHECK(test::max_abs_diff(y, expected) < 1e-5);
}

TEST_CASE("gated_ffn: gradients through the layer match finite differences") {
  core::Rng rng(5);
  example::GatedFfn ffn(4, 6, rng);
  ffn.to(DType::f64);
  std::vector<Tensor> inputs = ffn.parameters();
  inputs.push_back(test::random_input({2, 3, 4}, 6, DType::f64));
  test::check_gradients("GatedFfn",
                        [&](const std::vector<Tensor>& in) { return ffn.forward(in.back()); }, inputs);
}

TEST_CASE("gated_ffn: registered by one line, a config names it as the blocks' ffn") {
  CHECK(layers::layer_registry().contains("gated_ffn"));
  core::Rng rng(7);
  const ConfigNode model = test::config(
      "d_model: 8\nheads: 2\nlayers: 2\nd_ff: 12\nffn: {type: gated_ffn}\n");
  auto transformer = layers::build_model(model, 10, 6, rng);
  const auto state = transformer->state();
  CHECK(state.at("blocks.1.ffn.gate.weight").shape() == core::Shape{12, 8});  // hidden = d_ff
  CHECK(state.count("blocks.0.ffn.fc1.weight") == 0);
  CHECK(dynamic_cast<example::GatedFfn*>(transformer->block(0).ffn()) != nullptr);
  CHECK_THROWS_WITH_AS(
      layers::build_model(test::config("d_model: 8\nheads: 2\nlayers: 1\nffn: {type: gated_fnn}\n"),
                          10, 6, rng),
      doctest::Contains("did you mean 'gated_ffn'?"), ConfigError);
  // A whole model with the custom layer, gradient-checked in double.
  transformer->to(DType::f64);
  const core::Ids ids = test::random_ids({2, 5}, 10, 8);
  core::GradcheckOptions options;
  options.directions = 8;
  test::check_gradients("Transformer with gated_ffn",
                        [&](const std::vector<Tensor>&) { return transformer->forward(ids); },
                        transformer->parameters(), options);
}

TEST_CASE("custom layer example: trains a few steps from config.yaml and its loss falls") {
  const std::vector<double> losses = example::train_demo(CUSTOM_LAYER_DIR "/config.yaml", nullptr);
  REQUIRE(losses.size() == 40);
  for (double loss : losses) CHECK(std::isfinite(loss));
  const double first = std::accumulate(losses.begin(), losses.begin() + 5, 0.0) / 5;
  const double last = std::accumulate(losses.end() - 5, losses.end(), 0.0) / 5;
  CHECK(last < 0.8 * first);
}
