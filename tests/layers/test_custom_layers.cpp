// User layers in the model's slots, registered the way a user registers them (one static
// RegisterLayer each) and named from YAML: an attention layer of one learned bilinear form
// per head, trained a few steps and inspected through Transformer::attention_maps(), and
// an RMS norm standing in ln1, ln2 and ln_f.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "core/ops.hpp"
#include "layers/build_model.hpp"
#include "layers/linear.hpp"
#include "layers/registry.hpp"
#include "layer_test_util.hpp"

using namespace qkv;
using namespace qkv::layers;
using core::Tensor;

namespace {

// Head h scores query i against key j by x_i W_h x_jᵀ / sqrt(C), with W_h a learned C x C
// form (parameter `forms`, the H forms stacked); values are x itself, and a learned `wo`
// maps the H heads side by side (H·C) back to C. Keys: causal [true].
class BilinearAttention : public AttentionLayer {
 public:
  BilinearAttention(std::size_t dim, std::size_t heads, bool causal, core::Rng& rng)
      : dim_(dim), heads_(heads), causal_(causal) {
    const double bound = 1.0 / std::sqrt(static_cast<double>(dim));
    forms_ = register_parameter("forms", Tensor::uniform({heads * dim, dim}, -bound, bound, rng));
    wo_ = register_module("wo", std::make_shared<Linear>(heads * dim, dim, rng));
  }

  using AttentionLayer::forward;
  Tensor forward(const Tensor& x, const KeyPadding* key_padding) override {
    const std::size_t B = x.size(0), T = x.size(1), C = dim_;
    const Tensor keys = core::reshape(x, {B, 1, T, C});                 // shared by the heads
    const Tensor queries = core::split_heads(core::linear(x, forms_), heads_);  // (B, H, T, C)
    Tensor scores = core::mul(core::matmul(queries, keys, false, true),
                              1.0 / std::sqrt(static_cast<double>(C)));  // (B, H, T, T)
    if (causal_) scores = core::causal_mask(scores);
    if (key_padding) {
      const std::vector<double> padded(key_padding->begin(), key_padding->end());
      const Tensor mask = Tensor::from_vector(padded, {B, 1, 1, T}).to(x.dtype());
      scores = core::masked_fill(scores, mask, -std::numeric_limits<double>::infinity());
    }
    const Tensor probabilities = core::softmax(scores);
    if (capturing()) keep_attention_map(probabilities);
    return wo_->forward(core::merge_heads(core::matmul(probabilities, keys)));  // (B, T, C)
  }

 private:
  std::size_t dim_, heads_;
  bool causal_;
  Tensor forms_;
  std::shared_ptr<Linear> wo_;
};

std::shared_ptr<Layer> make_bilinear_attention(const ConfigNode& options,
                                               const LayerContext& context, core::Rng& rng) {
  return std::make_shared<BilinearAttention>(context.d_model, context.heads,
                                             options.get<bool>("causal", true), rng);
}

// y = x / sqrt(mean(x²) + eps) * gain over the last axis; parameter `gain`. Keys: eps [1e-6].
class RmsNorm : public Layer {
 public:
  RmsNorm(std::size_t dim, double eps) : eps_(eps) {
    gain_ = register_parameter("gain", Tensor::ones({dim}), ParamKind::norm);
  }
  Tensor forward(const Tensor& x) override {
    const Tensor rms = core::sqrt(core::add(core::mean(core::mul(x, x), {-1}, true), eps_));
    return core::mul(core::div(x, rms), gain_);
  }
  double eps() const { return eps_; }

 private:
  double eps_;
  Tensor gain_;
};

std::shared_ptr<Layer> make_rms_norm(const ConfigNode& options, const LayerContext& context,
                                     core::Rng&) {
  const double eps = options.get<double>("eps", 1e-6);
  options.require(eps > 0.0, "eps", "a positive number");
  return std::make_shared<RmsNorm>(context.d_model, eps);
}

static const RegisterLayer bilinear_registration("test_bilinear_attention", make_bilinear_attention);
static const RegisterLayer rms_norm_registration("test_rms_norm", make_rms_norm);

constexpr std::size_t V = 6, T = 6, B = 8;

std::shared_ptr<Transformer> build(const std::string& text, std::uint64_t seed) {
  core::Rng rng(seed);
  return build_model(read_transformer_options(test::model_config(text)), V, T, rng);
}

// The task "repeat the previous token": position t's target is token t - 1 (position 0
// has none and is masked out), which only attention to the previous position can solve.
struct Batch {
  core::Ids ids, targets;
  std::vector<std::uint8_t> mask;
};

Batch previous_token_batch(std::uint64_t seed) {
  Batch batch{test::random_ids({B, T}, V, seed), {}, std::vector<std::uint8_t>(B * T, 1)};
  batch.targets = batch.ids;
  for (std::size_t b = 0; b < B; ++b) {
    batch.mask[b * T] = 0;
    for (std::size_t t = 1; t < T; ++t) batch.targets.values[b * T + t] = batch.ids.values[b * T + t - 1];
  }
  return batch;
}

// One step of plain gradient descent on the batch; returns the loss before the step.
double sgd_step(Transformer& model, const Batch& batch, double lr) {
  model.zero_grad();
  const Tensor loss = core::cross_entropy(model.forward(batch.ids), batch.targets, batch.mask);
  loss.backward();
  core::NoGrad no_grad;
  for (Tensor p : model.parameters()) p.copy_(core::sub(p, core::mul(p.grad(), lr)));
  return loss.item();
}

double held_out_loss(Transformer& model, const Batch& batch) {
  core::NoGrad no_grad;
  model.eval();
  return core::cross_entropy(model.forward(batch.ids), batch.targets, batch.mask).item();
}

}  // namespace

TEST_CASE("custom layers: a user's attention layer from YAML trains and hands back its maps") {
  auto model = build("d_model: 16\nheads: 2\nlayers: 1\nattention: {type: test_bilinear_attention}\n", 1);
  REQUIRE(dynamic_cast<BilinearAttention*>(&model->block(0).attention()) != nullptr);
  CHECK(model->state().at("blocks.0.attn.forms").shape() == core::Shape{32, 16});
  CHECK(model->state().count("blocks.0.attn.wo.weight") == 1);

  // Fresh batches every step, and the loss measured on a batch never trained on: only
  // attending to the previous position lowers it (memorizing sequences cannot).
  const Batch batch = previous_token_batch(1000);
  const double before = held_out_loss(*model, batch);
  model->train();
  for (std::uint64_t step = 0; step < 100; ++step) sgd_step(*model, previous_token_batch(step), 0.3);
  const double after = held_out_loss(*model, batch);
  CAPTURE(before);
  CAPTURE(after);
  CHECK(after < 0.1 * before);

  model->eval();
  model->capture_attention(true);
  model->forward(batch.ids);
  const std::vector<Tensor> maps = model->attention_maps();
  REQUIRE(maps.size() == 1);
  REQUIRE(maps[0].shape() == core::Shape{B, 2, T, T});
  CHECK_FALSE(maps[0].requires_grad());
  const Tensor rows = core::sum(maps[0], {-1});
  CHECK(test::max_abs_diff(rows, Tensor::ones(rows.shape())) < 1e-5);
  for (std::size_t i = 0; i < T; ++i)
    for (std::size_t j = i + 1; j < T; ++j) CHECK(maps[0].at({3, 1, i, j}) == 0.0);  // causal
  // The maps show what it learned: some head puts most of each row on the previous token
  // (uniform causal rows would put 0.29 there on average).
  double best = 0.0;
  for (std::size_t h = 0; h < 2; ++h) {
    double on_previous = 0.0;
    for (std::size_t b = 0; b < B; ++b)
      for (std::size_t t = 1; t < T; ++t) on_previous += maps[0].at({b, h, t, t - 1});
    best = std::max(best, on_previous / (B * (T - 1)));
  }
  CHECK(best > 0.6);

  SUBCASE("the key padding reaches it") {
    std::vector<std::uint8_t> padding(B * T, 0);
    padding[B * T - 1] = padding[B * T - 2] = 1;  // the last sequence ends in two pads
    model->forward(batch.ids, &padding);
    const Tensor padded = model->attention_maps()[0];
    for (std::size_t h = 0; h < 2; ++h)
      for (std::size_t i = 0; i < T; ++i)
        for (std::size_t j = T - 2; j < T; ++j) CHECK(padded.at({B - 1, h, i, j}) == 0.0);
    CHECK(padded.at({B - 1, 0, T - 1, 0}) > 0.0);
  }
  SUBCASE("its own keys are read from its section") {
    auto open = build("d_model: 16\nheads: 2\nlayers: 1\n"
                      "attention: {type: test_bilinear_attention, causal: false}\n", 1);
    open->capture_attention(true);
    open->forward(batch.ids);
    CHECK(open->attention_maps()[0].at({0, 0, 0, T - 1}) > 0.0);
    CHECK_THROWS_WITH_AS(build("d_model: 16\nheads: 2\nlayers: 1\n"
                               "attention: {type: test_bilinear_attention, casual: false}\n", 1),
                         doctest::Contains("unknown key 'model.attention.casual'; did you mean "
                                           "'model.attention.causal'?"),
                         ConfigError);
  }
}

TEST_CASE("custom layers: a user's norm from YAML stands in ln1, ln2 and ln_f") {
  auto model = build("d_model: 8\nheads: 2\nlayers: 2\nnorm: {type: test_rms_norm, eps: 0.0001}\n", 3);
  std::vector<std::string> norms;
  for (const auto& p : model->named_parameters()) {
    if (p.name.find("ln") != std::string::npos) norms.push_back(p.name);
  }
  CHECK(norms == std::vector<std::string>{"blocks.0.ln1.gain", "blocks.0.ln2.gain",
                                          "blocks.1.ln1.gain", "blocks.1.ln2.gain", "ln_f.gain"});
  std::size_t seen = 0;
  for (const auto* parent : {static_cast<const Module*>(&model->block(0)),
                             static_cast<const Module*>(model.get())}) {
    for (const auto& [name, child] : parent->children()) {
      if (name != "ln1" && name != "ln2" && name != "ln_f") continue;
      CHECK(dynamic_cast<const RmsNorm&>(*child).eps() == 0.0001);
      ++seen;
    }
  }
  CHECK(seen == 3);
  CHECK(model->forward(test::random_ids({2, T}, V, 4)).shape() == core::Shape{2, T, V});
  CHECK_THROWS_WITH_AS(build("d_model: 8\nheads: 2\nlayers: 1\nnorm: {type: test_rms_norm, esp: 0.1}\n", 3),
                       doctest::Contains("unknown key 'model.norm.esp'; did you mean 'model.norm.eps'?"),
                       ConfigError);
  CHECK_THROWS_WITH_AS(build("d_model: 8\nheads: 2\nlayers: 1\nnorm: {type: test_rms_norm, eps: -1}\n", 3),
                       doctest::Contains("model.norm.eps: expected a positive number, found -1"),
                       ConfigError);
}
