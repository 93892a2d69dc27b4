// Transformer: logits and loss against PyTorch (fixture), parameter names and counts,
// seeding, the causal mask through the whole model, padding, attention capture, dropout
// reproducibility, and a gradient check through a 2-layer model in float64.
#include <doctest/doctest.h>

#include <cmath>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/ops.hpp"
#include "layers/build_model.hpp"
#include "layers/transformer.hpp"
#include "layer_test_util.hpp"

using namespace qkv;
using namespace qkv::layers;
using core::DType;
using core::Tensor;

namespace {

// The reference model of DESIGN.md, small: V = 11, C = 8, H = 2, d_ff = 16.
TransformerOptions reference_options(std::size_t layers) {
  TransformerOptions o;
  o.vocab = 11;
  o.max_len = 8;
  o.layers = layers;
  o.block.attention.d_model = 8;
  o.block.attention.heads = 2;
  FeedForwardOptions ffn;
  ffn.dim = 8;
  ffn.hidden = 16;
  o.block.ffn = feed_forward_builder(ffn);
  return o;
}

Tensor tensor_from_json(const nlohmann::json& j) {
  return Tensor::from_vector(j.at("values").get<std::vector<double>>(),
                             j.at("shape").get<core::Shape>());
}

}  // namespace

TEST_CASE("transformer: matches PyTorch logits and loss (fixture)") {
  std::ifstream file(QKV_SOURCE_DIR "/tests/fixtures/layers/layers_reference.json");
  REQUIRE(file.good());
  const nlohmann::json fixture = nlohmann::json::parse(file);
  REQUIRE(fixture.at("cases").size() == 5);
  for (const auto& c : fixture.at("cases")) {
    const std::string name = c.at("name");
    CAPTURE(name);
    core::Rng rng(0);
    const ConfigNode section(YAML::Load(c.at("model").dump()), "model", "layers_reference.json");
    auto model = build_model(section, c.at("vocab"), c.at("max_len"), rng);
    std::map<std::string, Tensor> state;
    for (const auto& [key, value] : c.at("state").items()) state[key] = tensor_from_json(value);
    CHECK(model->named_parameters().size() == state.size());

    const core::Ids ids{c.at("ids").at("shape").get<core::Shape>(),
                        c.at("ids").at("values").get<std::vector<std::int32_t>>()};
    const core::Ids targets{ids.shape, c.at("targets").get<std::vector<std::int32_t>>()};
    const auto loss_mask = c.at("loss_mask").get<std::vector<std::uint8_t>>();
    const auto key_padding = c.at("key_padding").get<std::vector<std::uint8_t>>();
    const Tensor expected = tensor_from_json(c.at("logits"));
    const double expected_loss = c.at("loss");

    model->load_state(state);  // float32 parameters
    model->eval();
    const auto* padding = key_padding.empty() ? nullptr : &key_padding;
    SUBCASE("float32, to 1e-5 relative") {
      const Tensor logits = model->forward(ids, padding);
      CHECK(logits.dtype() == DType::f32);
      CHECK(test::max_abs_diff(logits, expected) <= 1e-5 * test::max_abs(expected));
      const double loss = core::cross_entropy(logits, targets, loss_mask).item();
      CHECK(std::abs(loss - expected_loss) <= 1e-5 * std::abs(expected_loss));
    }
    SUBCASE("float64, to rounding") {
      model->to(DType::f64);
      model->load_state(state);  // the fixture's exact doubles
      const Tensor logits = model->forward(ids, padding);
      CHECK(test::max_abs_diff(logits, expected) <= 1e-12 * test::max_abs(expected));
      const double loss = core::cross_entropy(logits, targets, loss_mask).item();
      CHECK(std::abs(loss - expected_loss) <= 1e-12 * std::abs(expected_loss));
    }
  }
}

TEST_CASE("transformer: parameter names and count of the reference model") {
  core::Rng rng(1);
  Transformer model(reference_options(1), rng);
  std::vector<std::string> names;
  for (const auto& p : model.named_parameters()) names.push_back(p.name);
  CHECK(names == std::vector<std::string>{
                     "tok_emb.weight", "pos_emb.weight",
                     "blocks.0.ln1.weight", "blocks.0.ln1.bias",
                     "blocks.0.attn.wq.weight", "blocks.0.attn.wq.bias",
                     "blocks.0.attn.wk.weight", "blocks.0.attn.wk.bias",
                     "blocks.0.attn.wv.weight", "blocks.0.attn.wv.bias",
                     "blocks.0.attn.wo.weight", "blocks.0.attn.wo.bias",
                     "blocks.0.ln2.weight", "blocks.0.ln2.bias",
                     "blocks.0.ffn.fc1.weight", "blocks.0.ffn.fc1.bias",
                     "blocks.0.ffn.fc2.weight", "blocks.0.ffn.fc2.bias",
                     "ln_f.weight", "ln_f.bias", "head.weight", "head.bias"});
  const std::size_t V = 11, C = 8, F = 16, T = 8;
  const std::size_t per_block = 2 * C + 4 * (C * C + C) + 2 * C + (C * F + F) + (F * C + C);
  Transformer two(reference_options(2), rng);
  CHECK(two.parameter_count() == V * C + T * C + 2 * per_block + 2 * C + C * V + V);
  CHECK(two.layers() == 2);
  CHECK(two.d_model() == 8);

  TransformerOptions sinusoidal = reference_options(1);
  sinusoidal.positional = Positional::sinusoidal;
  CHECK(Transformer(sinusoidal, rng).parameter_count() == model.parameter_count() - T * C);
}

TEST_CASE("transformer: a seed means the same weights; another seed different ones") {
  core::Rng a(42), b(42), c(43);
  Transformer first(reference_options(2), a), second(reference_options(2), b),
      other(reference_options(2), c);
  const auto s1 = first.state(), s2 = second.state(), s3 = other.state();
  for (const auto& [name, value] : s1) {
    CAPTURE(name);
    CHECK(value.to_vector() == s2.at(name).to_vector());
    if (name.find("ln") == std::string::npos) CHECK(value.to_vector() != s3.at(name).to_vector());
  }
}

TEST_CASE("transformer: changing token t changes no logits before t") {
  const std::size_t T = 7, t = 4;
  core::Rng rng(2);
  Transformer model(reference_options(2), rng);
  core::Ids ids = test::random_ids({2, T}, 11, 3);
  const Tensor before = model.forward(ids);
  CHECK(before.shape() == core::Shape{2, T, 11});
  for (std::size_t b = 0; b < 2; ++b) ids.values[b * T + t] = (ids.values[b * T + t] + 5) % 11;
  const Tensor after = model.forward(ids);
  CHECK(test::max_abs_diff(core::slice(before, 1, 0, t), core::slice(after, 1, 0, t)) == 0.0);
  for (std::size_t i = t; i < T; ++i) {
    CHECK(test::max_abs_diff(core::slice(before, 1, i, i + 1), core::slice(after, 1, i, i + 1)) > 0.0);
  }
}

TEST_CASE("transformer: padding keeps padded tokens from reaching other positions") {
  TransformerOptions o = reference_options(2);
  o.block.attention.causal = false;
  core::Rng rng(4);
  Transformer model(o, rng);
  core::Ids ids = test::random_ids({2, 5}, 11, 5);
  const std::vector<std::uint8_t> padding{0, 0, 0, 0, 0, 0, 0, 0, 1, 1};
  const Tensor before = model.forward(ids, &padding);
  ids.values[8] = (ids.values[8] + 1) % 11;
  ids.values[9] = (ids.values[9] + 3) % 11;
  const Tensor after = model.forward(ids, &padding);
  CHECK(test::max_abs_diff(core::slice(before, 1, 0, 3), core::slice(after, 1, 0, 3)) == 0.0);
  // Without the mask, the change reaches the rest of the sequence.
  const Tensor open = model.forward(ids);
  CHECK(test::max_abs_diff(core::slice(before, 1, 0, 3), core::slice(open, 1, 0, 3)) > 0.0);
}

TEST_CASE("transformer: capture_attention hands back one probability map per layer") {
  core::Rng rng(6);
  Transformer model(reference_options(2), rng);
  const core::Ids ids = test::random_ids({3, 5}, 11, 7);
  const Tensor plain = model.forward(ids);
  model.capture_attention(true);
  const Tensor captured = model.forward(ids);
  CHECK(test::max_abs_diff(plain, captured) == 0.0);
  const std::vector<Tensor> maps = model.attention_maps();
  REQUIRE(maps.size() == 2);
  for (const Tensor& map : maps) {
    REQUIRE(map.shape() == core::Shape{3, 2, 5, 5});
    const Tensor rows = core::sum(map, {-1});
    CHECK(test::max_abs_diff(rows, Tensor::ones(rows.shape())) < 1e-6);
    CHECK(map.at({1, 1, 2, 3}) == 0.0);  // causal
  }
  CHECK(model.block(1).attention().head_weights(1).wq.shape() == core::Shape{4, 8});
  CHECK_THROWS_WITH_AS(model.block(2), doctest::Contains("2 out of range (layers 2)"), std::out_of_range);
}

TEST_CASE("transformer: dropout draws from the model's generator, so its state replays a step") {
  TransformerOptions o = reference_options(2);
  o.dropout = 0.2;
  o.block.dropout = 0.2;
  o.block.attention.dropout = 0.1;
  core::Rng rng(8);
  Transformer model(o, rng);
  const core::Ids ids = test::random_ids({2, 6}, 11, 9);
  model.eval();
  const Tensor eval_logits = model.forward(ids);
  CHECK(test::max_abs_diff(eval_logits, model.forward(ids)) == 0.0);
  model.train();
  const std::string saved = model.dropout_rng().state();
  const Tensor first = model.forward(ids);
  const Tensor second = model.forward(ids);
  CHECK(test::max_abs_diff(first, eval_logits) > 1e-4);
  CHECK(test::max_abs_diff(first, second) > 1e-4);
  model.dropout_rng().set_state(saved);
  CHECK(test::max_abs_diff(model.forward(ids), first) == 0.0);
}

TEST_CASE("transformer: gradient check in float64 through a 2-layer model") {
  core::Rng rng(10);
  TransformerOptions o = reference_options(2);
  o.block.attention.d_model = 4;
  o.block.ffn = feed_forward_builder({4, 8, Activation::gelu});
  o.vocab = 5;
  Transformer model(o, rng);
  model.to(DType::f64);
  const core::Ids ids = test::random_ids({2, 4}, 5, 11);
  core::GradcheckOptions options;
  options.directions = 16;
  test::check_gradients("Transformer",
                        [&](const std::vector<Tensor>&) { return model.forward(ids); },
                        model.parameters(), options);
  SUBCASE("and through the loss, element by element") {
    const core::Ids targets = test::random_ids({2, 4}, 5, 12);
    test::check_gradients("Transformer loss",
                          [&](const std::vector<Tensor>&) {
                            return core::cross_entropy(model.forward(ids), targets);
                          },
                          model.parameters());
  }
}

TEST_CASE("transformer: bad inputs name what is wrong") {
  core::Rng rng(13);
  Transformer model(reference_options(1), rng);
  CHECK_THROWS_WITH_AS(model.forward(test::random_ids({2, 9}, 11, 1)),
                       doctest::Contains("sequence length 9 exceeds max_len 8"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(model.forward(test::random_ids({6}, 11, 1)),
                       doctest::Contains("expected token ids (B, T), got [6]"), std::invalid_argument);
  TransformerOptions o = reference_options(1);
  o.layers = 0;
  CHECK_THROWS_WITH_AS(Transformer(o, rng), doctest::Contains("vocab, max_len and layers must be positive"),
                       std::invalid_argument);
}
