// Head ablation and patching: zero-ablating a head through hook_z is the model whose wo
// columns for that head are zero; mean-ablating it is that model with wo's bias moved by
// the head's mean output; other heads pass bit for bit; bad heads and means name the point.
#include <doctest/doctest.h>

#include <cmath>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/ops.hpp"
#include "inspect/activation_cache.hpp"
#include "inspect/interventions.hpp"
#include "layers/build_model.hpp"
#include "tests/layers/layer_test_util.hpp"

using namespace qkv;
using core::Shape;
using core::Tensor;
using inspect::ActivationCache;
using inspect::run_with_cache;
using inspect::run_with_hooks;

namespace {

constexpr std::size_t kVocab = 11, kMaxLen = 8;
constexpr std::size_t B = 3, T = 6, C = 8, H = 2, D = C / H;

std::shared_ptr<layers::Transformer> make_model(std::uint64_t seed = 1) {
  core::Rng rng(seed);
  const layers::TransformerOptions options = layers::read_transformer_options(
      test::model_config("d_model: 8\nheads: 2\nlayers: 2\nd_ff: 16\n"));
  return layers::build_model(options, kVocab, kMaxLen, rng);
}

// The same weights as `model`, with wo's columns for `head` of block `layer` zeroed and
// `bias_shift` (C) added to wo's bias.
std::shared_ptr<layers::Transformer> with_head_cut(const layers::Transformer& model, std::size_t layer,
                                                   std::size_t head, const std::vector<double>& bias_shift) {
  const auto cut = make_model();
  std::map<std::string, Tensor> state = model.state();
  const std::string wo = "blocks." + std::to_string(layer) + ".attn.wo.";
  std::vector<double> weight = state.at(wo + "weight").to_vector();  // (C, H·D)
  for (std::size_t row = 0; row < C; ++row)
    for (std::size_t d = 0; d < D; ++d) weight[row * H * D + head * D + d] = 0.0;
  state[wo + "weight"] = Tensor::from_vector(weight, {C, H * D}).to(core::DType::f32);
  std::vector<double> bias = state.at(wo + "bias").to_vector();
  for (std::size_t c = 0; c < C; ++c) bias[c] += bias_shift[c];
  state[wo + "bias"] = Tensor::from_vector(bias, {C}).to(core::DType::f32);
  cut->load_state(state);
  cut->eval();
  return cut;
}

Tensor head_slice(const Tensor& z, std::size_t head) { return core::slice(z, 2, head, head + 1); }

// Wo_head · mean: what a head whose output is always `mean` (D) adds to the attention's output.
std::vector<double> through_wo(const layers::Transformer& model, std::size_t layer, std::size_t head,
                               const std::vector<double>& mean) {
  const std::vector<double> weight =
      model.state().at("blocks." + std::to_string(layer) + ".attn.wo.weight").to_vector();
  std::vector<double> out(C, 0.0);
  for (std::size_t row = 0; row < C; ++row)
    for (std::size_t d = 0; d < D; ++d) out[row] += weight[row * H * D + head * D + d] * mean[d];
  return out;
}

}  // namespace

TEST_CASE("zero_ablate_head: equals zeroing the head's columns of wo") {
  const auto model = make_model();
  const core::Ids ids = test::random_ids({B, T}, kVocab, 2);
  const ActivationCache clean = run_with_cache(*model, ids);
  for (std::size_t layer = 0; layer < 2; ++layer) {
    for (std::size_t head = 0; head < H; ++head) {
      CAPTURE(layer);
      CAPTURE(head);
      const ActivationCache ablated = run_with_cache(*model, ids, {inspect::zero_ablate_head(layer, head)});
      const auto cut = with_head_cut(*model, layer, head, std::vector<double>(C, 0.0));
      core::NoGrad no_grad;
      const Tensor expected = cut->forward(ids);
      CHECK(test::max_abs_diff(ablated.logits(), expected) <= 1e-5 * test::max_abs(expected));
      CHECK(test::max_abs_diff(ablated.logits(), clean.logits()) > 1e-3);  // the head mattered

      const std::string z = "blocks." + std::to_string(layer) + ".attn.hook_z";
      CHECK(test::max_abs(head_slice(ablated[z], head)) == 0.0);
      CHECK(head_slice(ablated[z], 1 - head).to_vector() == head_slice(clean[z], 1 - head).to_vector());
    }
  }
}

TEST_CASE("mean_ablate_head: the head outputs the mean; wo's bias moved by Wo_head · mean") {
  const auto model = make_model();
  const core::Ids ids = test::random_ids({B, T}, kVocab, 3);
  const ActivationCache clean = run_with_cache(*model, ids);
  const std::size_t layer = 1, head = 0;
  const Tensor z = clean["blocks.1.attn.hook_z"];

  SUBCASE("one mean for every position") {
    const Tensor mean = inspect::head_mean(z, head);
    REQUIRE(mean.shape() == Shape{D});
    const ActivationCache ablated = run_with_cache(*model, ids, {inspect::mean_ablate_head(layer, head, mean)});
    const std::vector<double> m = mean.to_vector();
    const std::vector<double> seen = head_slice(ablated["blocks.1.attn.hook_z"], head).to_vector();
    for (std::size_t i = 0; i < seen.size(); ++i) CHECK(seen[i] == m[i % D]);
    CHECK(head_slice(ablated["blocks.1.attn.hook_z"], 1).to_vector() == head_slice(z, 1).to_vector());

    const auto cut = with_head_cut(*model, layer, head, through_wo(*model, layer, head, m));
    core::NoGrad no_grad;
    const Tensor expected = cut->forward(ids);
    CHECK(test::max_abs_diff(ablated.logits(), expected) <= 1e-5 * test::max_abs(expected));
  }
  SUBCASE("one mean per position") {
    std::vector<double> per_position(T * D);
    for (std::size_t i = 0; i < per_position.size(); ++i) per_position[i] = 0.1 * static_cast<double>(i);
    const Tensor mean = Tensor::from_vector(per_position, {T, D}).to(core::DType::f32);
    const ActivationCache ablated = run_with_cache(*model, ids, {inspect::mean_ablate_head(layer, head, mean)});
    const Tensor seen = head_slice(ablated["blocks.1.attn.hook_z"], head);  // (B, T, 1, D)
    for (std::size_t b = 0; b < B; ++b) {
      CHECK(core::reshape(core::slice(seen, 0, b, b + 1), {T, D}).to_vector() == mean.to_vector());
    }
  }
}

TEST_CASE("head_mean: over the positions a mask selects") {
  // z (1, 2, 2, 2): positions 0 and 1, head 1 holds (1, 2) then (3, 6).
  const Tensor z = Tensor::from_vector(std::vector<float>{9, 9, 1, 2, 9, 9, 3, 6}, {1, 2, 2, 2});
  CHECK(inspect::head_mean(z, 1).to_vector() == std::vector<double>{2, 4});
  CHECK(inspect::head_mean(z, 1, {0, 1}).to_vector() == std::vector<double>{3, 6});
  CHECK_THROWS_WITH_AS(inspect::head_mean(z, 1, {0, 0}), doctest::Contains("no position is selected"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(inspect::head_mean(z, 1, {1}),
                       doctest::Contains("positions has 1 entries; z [1, 2, 2, 2] has B·T = 2"),
                       std::invalid_argument);
}

TEST_CASE("interventions: a bad head, layer or mean says what and where") {
  const auto model = make_model();
  const core::Ids ids = test::random_ids({B, T}, kVocab, 4);
  CHECK_THROWS_WITH_AS(run_with_hooks(*model, ids, {inspect::zero_ablate_head(0, 2)}),
                       doctest::Contains("zero_ablate_head: head 2 out of range: "
                                         "'blocks.0.attn.hook_z' is [3, 6, 2, 4] (B, T, heads, Dv)"),
                       std::out_of_range);
  CHECK_THROWS_WITH_AS(run_with_hooks(*model, ids, {inspect::zero_ablate_head(2, 0)}),
                       doctest::Contains("no hook point 'blocks.2.attn.hook_z'"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(run_with_hooks(*model, ids, {inspect::mean_ablate_head(0, 0, Tensor::zeros({5}))}),
                       doctest::Contains("the mean is [5]; 'blocks.0.attn.hook_z' is [3, 6, 2, 4], so "
                                         "it must be (4) or (6, 4)"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(inspect::mean_ablate_head(0, 0, Tensor::zeros({1, 2, 4})),
                       doctest::Contains("must be (Dv) or (T, Dv); got [1, 2, 4]"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(run_with_hooks(*model, ids, {inspect::patch("logits", Tensor::zeros({3, 6}))}),
                       doctest::Contains("hook at 'logits': the replacement must have the "
                                         "activation's shape [3, 6, 11]"),
                       std::invalid_argument);
}

TEST_CASE("interventions: an ablation trains through (a graph flows through its hook)") {
  const auto model = make_model();
  model->add_hook(inspect::zero_ablate_head(0, 0));
  const core::Ids ids = test::random_ids({B, T}, kVocab, 5);
  core::cross_entropy(model->forward(ids), test::random_ids({B, T}, kVocab, 6)).backward();
  // The ablated head's query weights get no gradient (its output is cut), the other's do.
  const core::NamedParameter wq = model->named_parameters()[4];
  REQUIRE(wq.name == "blocks.0.attn.wq.weight");  // (C, C): head h reads rows [h·D, (h+1)·D)
  const std::vector<double> wq_grad = wq.tensor.grad().to_vector();
  double head0 = 0, head1 = 0;
  for (std::size_t row = 0; row < C; ++row)
    for (std::size_t col = 0; col < C; ++col) (row < D ? head0 : head1) += std::abs(wq_grad[row * C + col]);
  CHECK(head0 == 0.0);
  CHECK(head1 > 0.0);
}
