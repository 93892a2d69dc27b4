// A user's attention layer in the attention slot: inspect reads its maps (scores,
// similarity, the pictures) and says that its weights and head importance are out of reach.
#include <doctest/doctest.h>

#include <memory>
#include <string>
#include <vector>

#include "core/ops.hpp"
#include "inspect/inspection.hpp"
#include "inspect/text_report.hpp"
#include "inspect_test_util.hpp"
#include "layers/registry.hpp"

using namespace qkv;
using namespace qkv::inspect;

namespace {

// Two heads: head 0 attends uniformly to every visible key, head 1 only to the previous
// position (itself at position 0). The output is the input: only the maps matter here.
class TwoPatternAttention : public layers::AttentionLayer {
 public:
  using layers::AttentionLayer::forward;
  core::Tensor forward(const core::Tensor& x, const layers::KeyPadding*) override {
    const std::size_t B = x.size(0), T = x.size(1);
    std::vector<float> p(B * 2 * T * T, 0.0f);
    for (std::size_t b = 0; b < B; ++b)
      for (std::size_t i = 0; i < T; ++i) {
        for (std::size_t j = 0; j <= i; ++j) p[((b * 2 + 0) * T + i) * T + j] = 1.0f / static_cast<float>(i + 1);
        p[((b * 2 + 1) * T + i) * T + (i ? i - 1 : 0)] = 1.0f;
      }
    if (capturing()) keep_attention_map(core::Tensor::from_vector(p, {B, 2, T, T}));
    return x;
  }
};

const layers::RegisterLayer registration(
    "inspect_test_two_patterns",
    [](const ConfigNode&, const layers::LayerContext&, core::Rng&) -> std::shared_ptr<layers::Layer> {
      return std::make_shared<TwoPatternAttention>();
    });

}  // namespace

TEST_CASE("inspect: a user's attention layer gets maps, scores and pictures, not weights") {
  const auto task = test::make_task("{type: copy, symbols: 6, min_len: 3, max_len: 5}");
  const auto model = test::make_model(
      "d_model: 16\nheads: 2\nlayers: 1\nattention: {type: inspect_test_two_patterns}\n", *task);
  InspectOptions options;
  options.inputs = {task->encode("a b c SEP a b c")};
  options.importance_samples = 8;
  const Inspection in = inspect_model(*model, *task, options);

  REQUIRE(in.weights.layers.size() == 1);
  CHECK_FALSE(in.weights.layers[0].analyzed);
  CHECK(in.weights.layers[0].note.find("'inspect_test_two_patterns' is not a MultiHeadAttention") !=
        std::string::npos);
  CHECK_FALSE(in.mean_qk_similarity.has_value());

  REQUIRE(in.scores.size() == 1);
  CHECK(*in.scores[0][1].previous == doctest::Approx(1.0));
  CHECK(*in.scores[0][0].previous < 0.5);
  CHECK(in.pattern_similarity[0](0, 1) < 0.9);

  REQUIRE(in.importance.has_value());
  CHECK(in.importance->note.find("has no hook_z") != std::string::npos);
  CHECK(in.importance->layers[0].empty());

  const std::string text = text_report(in);
  CHECK(text.find("maps only") != std::string::npos);
  CHECK(text.find("layer 0 head 1") != std::string::npos);
}
