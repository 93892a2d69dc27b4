// The custom-layer example: the silu op's value and hand-written gradient; GatedFfn's and
// BilinearAttention's shapes, values, masks and gradients; their registration by name in a
// model's slots; and the qkv command with the example's layers linked in (as my_qkv is)
// training config.yaml and attention.yaml and evaluating their checkpoints.
#include <doctest/doctest.h>

#include <cmath>
#include <numeric>
#include <string>
#include <vector>

#include "bilinear_attention.hpp"
#include "core/ops.hpp"
#include "gated_ffn.hpp"
#include "layers/build_model.hpp"
#include "silu.hpp"
#include "tests/layers/layer_test_util.hpp"
#include "tests/run_util.hpp"

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

namespace {

// A model of width 8 with 2 heads; `rest` gives its other keys.
std::shared_ptr<layers::Transformer> build(const std::string& rest, core::Rng& rng) {
  const ConfigNode model = test::model_config("d_model: 8\nheads: 2\n" + rest);
  return layers::build_model(layers::read_transformer_options(model), 10, 6, rng);
}

}  // namespace

TEST_CASE("gated_ffn: registered by one line, a config names it as the blocks' ffn") {
  CHECK(layers::layer_registry().contains("gated_ffn"));
  core::Rng rng(7);
  auto transformer = build("layers: 2\nd_ff: 12\nffn: {type: gated_ffn}\n", rng);
  const auto state = transformer->state();
  CHECK(state.at("blocks.1.ffn.gate.weight").shape() == core::Shape{12, 8});  // hidden = d_ff
  CHECK(state.count("blocks.0.ffn.fc1.weight") == 0);
  CHECK(dynamic_cast<example::GatedFfn*>(transformer->block(0).ffn()) != nullptr);
  CHECK_THROWS_WITH_AS(build("layers: 1\nffn: {type: gated_fnn}\n", rng),
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

namespace {

// softmax(x W_h xᵀ / sqrt(C) + masks) for head h, written with core ops: (B, T, T).
Tensor bilinear_probabilities(const Tensor& x, const Tensor& w, std::size_t h, bool causal) {
  const std::size_t C = x.size(2);
  const Tensor w_h = core::slice(w, 1, h * C, (h + 1) * C);
  Tensor scores = core::mul(core::matmul(core::matmul(x, w_h), x, false, true),
                            1.0 / std::sqrt(static_cast<double>(C)));
  if (causal) scores = core::causal_mask(scores);
  return core::softmax(scores);
}

Tensor head_map(const Tensor& maps, std::size_t h) {  // (B, H, T, T) -> head h's (B, T, T)
  const Tensor one = core::slice(maps, 1, h, h + 1);
  return core::reshape(one, {maps.size(0), maps.size(2), maps.size(3)});
}

}  // namespace

TEST_CASE("bilinear_attention: scores x W_h xᵀ / sqrt(C) per head, values x, then wo") {
  for (const bool causal : {true, false}) {
    CAPTURE(causal);
    core::Rng rng(11);
    example::BilinearAttention attn({4, 2, causal, 0.0}, rng);
    std::vector<std::string> names;
    for (const auto& p : attn.named_parameters()) names.push_back(p.name);
    CHECK(names == std::vector<std::string>{"w", "wo.weight", "wo.bias"});
    CHECK(attn.parameter_count() == 4 * 8 + (8 * 4 + 4));

    const Tensor x = test::random_input({2, 3, 4}, 12);
    attn.capture_attention(true);
    const Tensor y = attn.forward(x);
    CHECK(y.shape() == core::Shape{2, 3, 4});
    const auto w = attn.state();
    std::vector<Tensor> heads;
    for (std::size_t h = 0; h < 2; ++h) {
      const Tensor p = bilinear_probabilities(x, w.at("w"), h, causal);
      CHECK(test::max_abs_diff(head_map(attn.attention_map(), h), p) < 1e-6);
      heads.push_back(core::matmul(p, x));
    }
    const Tensor expected =
        core::linear(core::concat(heads, 2), w.at("wo.weight"), w.at("wo.bias"));
    CHECK(test::max_abs_diff(y, expected) < 1e-5);
  }
}

TEST_CASE("bilinear_attention: a padded key gets no attention; a wrong input shape is named") {
  core::Rng rng(13);
  example::BilinearAttention attn({4, 2, false, 0.0}, rng);
  attn.capture_attention(true);
  const layers::KeyPadding padding{0, 0, 1, 0, 1, 0};  // B = 2, S = 3
  attn.forward(test::random_input({2, 3, 4}, 14), &padding);
  const std::vector<double> p = attn.attention_map().to_vector();  // (2, 2, 3, 3)
  for (std::size_t b = 0; b < 2; ++b)
    for (std::size_t i = 0; i < 2 * 3; ++i)  // every head and query row of batch b
      for (std::size_t s = 0; s < 3; ++s)
        if (padding[b * 3 + s]) CHECK(p[(b * 6 + i) * 3 + s] == 0.0);
  CHECK_THROWS_WITH_AS(attn.forward(test::random_input({2, 3, 5}, 15)),
                       doctest::Contains("expected input (B, T, 4), got [2, 3, 5]"),
                       std::invalid_argument);
}

TEST_CASE("bilinear_attention: gradients through the layer match finite differences") {
  core::Rng rng(16);
  example::BilinearAttention attn({4, 2, true, 0.0}, rng);
  attn.to(DType::f64);
  std::vector<Tensor> inputs = attn.parameters();
  inputs.push_back(test::random_input({2, 3, 4}, 17, DType::f64));
  test::check_gradients("BilinearAttention",
                        [&](const std::vector<Tensor>& in) { return attn.forward(in.back()); },
                        inputs);
}

TEST_CASE("bilinear_attention: registered by one line, a config names it as the attention") {
  CHECK(layers::layer_registry().contains("bilinear_attention"));
  core::Rng rng(18);
  auto transformer =
      build("layers: 2\nattention: {type: bilinear_attention, heads: 4}\n", rng);
  const auto state = transformer->state();
  CHECK(state.at("blocks.1.attn.w").shape() == core::Shape{8, 32});  // its own heads: 4
  CHECK(state.count("blocks.0.attn.wq.weight") == 0);
  CHECK(dynamic_cast<example::BilinearAttention*>(&transformer->block(0).attention()) != nullptr);
  CHECK_THROWS_WITH_AS(
      build("layers: 1\nattention: {type: bilinear_attention, head: 2}\n", rng),
      doctest::Contains("key 'model.attention.head'; did you mean 'model.attention.heads'?"),
      ConfigError);
  CHECK_THROWS_WITH_AS(
      build("layers: 1\nattention: {type: bilinear_attention, heads: 0}\n", rng),
      doctest::Contains("model.attention.heads: expected a positive number of heads, found 0"),
      ConfigError);
  transformer->to(DType::f64);
  const core::Ids ids = test::random_ids({2, 5}, 10, 19);
  core::GradcheckOptions options;
  options.directions = 8;
  test::check_gradients("Transformer with bilinear_attention",
                        [&](const std::vector<Tensor>&) { return transformer->forward(ids); },
                        transformer->parameters(), options);
}

namespace {

// Trains `config` (this folder) for 40 steps with the qkv command, as my_qkv would, checks
// that the loss falls and that eval reads the checkpoint back; returns train's output.
std::string train_and_eval(const std::string& config) {
  const std::string run = test::fresh_dir("custom_layer_" + config);
  const test::CliResult trained =
      test::run_qkv({"train", CUSTOM_LAYER_DIR "/" + config, "--out", run, "--set",
                     "train.steps=40", "--set", "train.log_every=1"});
  REQUIRE_MESSAGE(trained.code == 0, trained.err);

  std::vector<double> losses;
  for (const nlohmann::json& line : test::read_jsonl(run + "/metrics.jsonl"))
    if (line["split"] == "train") losses.push_back(line["loss"].get<double>());
  REQUIRE(losses.size() == 40);
  for (double loss : losses) CHECK(std::isfinite(loss));
  const double first = std::accumulate(losses.begin(), losses.begin() + 5, 0.0) / 5;
  const double last = std::accumulate(losses.end() - 5, losses.end(), 0.0) / 5;
  CHECK(last < 0.8 * first);

  // The checkpoint's config names the custom layer: eval rebuilds it through the registry.
  const test::CliResult evaluated =
      test::run_qkv({"eval", run + "/last.safetensors", "--samples", "16"});
  REQUIRE_MESSAGE(evaluated.code == 0, evaluated.err);
  CHECK(nlohmann::json::parse(evaluated.out)["samples"] == 16);
  return trained.out;
}

}  // namespace

TEST_CASE("custom layer example: the qkv command trains config.yaml (gated_ffn) and evals it") {
  CHECK(train_and_eval("config.yaml").find("type: gated_ffn") != std::string::npos);
}

TEST_CASE("custom layer example: the qkv command trains attention.yaml (bilinear_attention)") {
  CHECK(train_and_eval("attention.yaml").find("type: bilinear_attention") != std::string::npos);
}
