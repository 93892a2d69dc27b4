// Transformer: logits and loss against PyTorch (fixture), parameter names and counts,
// seeding, the causal mask through the whole model, padding, attention capture, dropout
// reproducibility, and a gradient check through a 2-layer model in float64.
#include <doctest/doctest.h>

#include <cmath>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/ops.hpp"
#include "layers/attention.hpp"
#include "layers/build_model.hpp"
#include "layers/positional_encoding.hpp"
#include "layers/transformer.hpp"
#include "layer_test_util.hpp"

using namespace qkv;
using namespace qkv::layers;
using core::DType;
using core::Tensor;

namespace {

constexpr std::size_t kVocab = 11, kMaxLen = 8;

// The reference model of docs/DESIGN.md, small: C = 8, H = 2, d_ff = 16 (V = 11 and
// max_len = 8 are the task's), with `extra` model keys.
TransformerOptions reference_options(std::size_t layers, const std::string& extra = "") {
  return read_transformer_options(test::model_config(
      "d_model: 8\nheads: 2\nlayers: " + std::to_string(layers) + "\nd_ff: 16\n" + extra));
}

std::shared_ptr<Transformer> reference_model(std::size_t layers, core::Rng& rng,
                                             const std::string& extra = "") {
  return build_model(reference_options(layers, extra), kVocab, kMaxLen, rng);
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
    const ConfigNode section =
        ConfigNode::parse("model: " + c.at("model").dump() + "\n", "layers_reference.json")
            .child("model");
    auto model = build_model(read_transformer_options(section), c.at("vocab"), c.at("max_len"), rng);
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
  const auto model = reference_model(1, rng);
  std::vector<std::string> names;
  for (const auto& p : model->named_parameters()) names.push_back(p.name);
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
  const auto two = reference_model(2, rng);
  CHECK(two->parameter_count() == V * C + T * C + 2 * per_block + 2 * C + C * V + V);
  CHECK(two->layers() == 2);
  CHECK(two->d_model() == 8);
  CHECK(two->vocab() == V);
  CHECK(two->max_len() == T);

  const auto sinusoidal = reference_model(1, rng, "positional: sinusoidal_positions\n");
  CHECK(sinusoidal->parameter_count() == model->parameter_count() - T * C);
}

TEST_CASE("transformer: a seed means the same weights; another seed different ones") {
  core::Rng a(42), b(42), c(43);
  const auto s1 = reference_model(2, a)->state(), s2 = reference_model(2, b)->state(),
             s3 = reference_model(2, c)->state();
  for (const auto& [name, value] : s1) {
    CAPTURE(name);
    CHECK(value.to_vector() == s2.at(name).to_vector());
    if (name.find("ln") == std::string::npos) CHECK(value.to_vector() != s3.at(name).to_vector());
  }
}

TEST_CASE("transformer: weights are drawn from the seed in parameter order") {
  // What a seed means: tok_emb, pos_emb, then each block's attn and ffn (the norms draw
  // nothing), then head, each layer drawing as it does on its own. Replayed by hand.
  core::Rng rng(21);
  const auto model = reference_model(2, rng);
  core::Rng replay(21);
  std::map<std::string, Tensor> expected;
  auto keep = [&](const std::string& prefix, const Module& m) {
    for (const auto& p : m.named_parameters()) expected[prefix + p.name] = p.tensor;
  };
  keep("tok_emb.", Embedding(kVocab, 8, replay));
  keep("pos_emb.", LearnedPositionalEmbedding(kMaxLen, 8, replay));
  for (const std::string block : {"blocks.0.", "blocks.1."}) {
    MultiHeadAttentionOptions attention;
    attention.d_model = 8;
    attention.heads = 2;
    keep(block + "attn.", MultiHeadAttention(attention, replay));
    keep(block + "ffn.", FeedForward(FeedForwardOptions{8, 16, Activation::gelu}, replay));
  }
  keep("head.", Linear(8, kVocab, replay));
  std::size_t compared = 0;
  for (const auto& p : model->named_parameters()) {
    CAPTURE(p.name);
    if (p.name.find("ln") != std::string::npos) continue;  // ones and zeros
    REQUIRE(expected.count(p.name) == 1);
    CHECK(p.tensor.to_vector() == expected.at(p.name).to_vector());
    ++compared;
  }
  CHECK(compared == expected.size());
}

TEST_CASE("transformer: changing token t changes no logits before t") {
  const std::size_t T = 7, t = 4;
  core::Rng rng(2);
  const auto built = reference_model(2, rng);
  Transformer& model = *built;
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
  core::Rng rng(4);
  const auto built = reference_model(2, rng, "attention: {causal: false}\n");
  Transformer& model = *built;
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
  const auto built = reference_model(2, rng);
  Transformer& model = *built;
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
  const auto& attention = dynamic_cast<const MultiHeadAttention&>(model.block(1).attention());
  CHECK(attention.head_weights(1).wq.shape() == core::Shape{4, 8});
  CHECK_THROWS_WITH_AS(model.block(2), doctest::Contains("2 out of range (layers 2)"), std::out_of_range);
}

TEST_CASE("transformer: dropout draws from the model's generator, so its state replays a step") {
  core::Rng rng(8);
  const auto built = reference_model(2, rng, "dropout: 0.2\nattention: {dropout: 0.1}\n");
  Transformer& model = *built;
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
  const auto built = build_model(
      read_transformer_options(test::model_config("d_model: 4\nheads: 2\nlayers: 2\nd_ff: 8\n")),
      5, kMaxLen, rng);
  Transformer& model = *built;
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
  const auto built = reference_model(1, rng);
  Transformer& model = *built;
  CHECK_THROWS_WITH_AS(model.forward(test::random_ids({2, 9}, 11, 1)),
                       doctest::Contains("sequence length 9 exceeds max_len 8"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(model.forward(test::random_ids({6}, 11, 1)),
                       doctest::Contains("expected token ids (B, T), got [6]"), std::invalid_argument);
  TransformerOptions o = reference_options(1);
  o.layers = 0;
  CHECK_THROWS_WITH_AS(Transformer(o, kVocab, kMaxLen, rng),
                       doctest::Contains("vocab, max_len and layers must be positive"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(Transformer(reference_options(1), 0, kMaxLen, rng),
                       doctest::Contains("vocab, max_len and layers must be positive; got 0, 8, 1"),
                       std::invalid_argument);
  o = reference_options(1);
  o.d_ff = 0;
  CHECK_THROWS_WITH_AS(Transformer(o, kVocab, kMaxLen, rng),
                       doctest::Contains("d_model, heads and d_ff must be positive; got 8, 2, 0"),
                       std::invalid_argument);
}
