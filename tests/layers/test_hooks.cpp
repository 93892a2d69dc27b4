// Hook points: a point runs its readers and replacers in order, checks a replacement's
// shape, refuses a replacer where it is read-only; a Transformer names its points as
// transformer.hpp documents for each kind of block, and finds them by name.
#include <doctest/doctest.h>

#include <memory>
#include <string>
#include <vector>

#include "core/ops.hpp"
#include "layers/build_model.hpp"
#include "layers/hooks.hpp"
#include "layers/transformer.hpp"
#include "layer_test_util.hpp"

using namespace qkv;
using namespace qkv::layers;
using core::Tensor;

namespace {

std::shared_ptr<Transformer> small_model(const std::string& extra, core::Rng& rng) {
  const TransformerOptions options = read_transformer_options(
      test::model_config("d_model: 8\nheads: 2\nlayers: 2\nd_ff: 16\n" + extra));
  return build_model(options, 11, 8, rng);
}

// The names of block i's points, given as the part after "blocks.<i>.".
std::vector<std::string> block_names(std::size_t i, const std::vector<std::string>& parts) {
  std::vector<std::string> names;
  for (const std::string& part : parts) names.push_back("blocks." + std::to_string(i) + "." + part);
  return names;
}

std::vector<std::string> model_names(const std::vector<std::string>& block_parts) {
  std::vector<std::string> names{"hook_embed", "hook_pos_embed"};
  for (std::size_t i = 0; i < 2; ++i) {
    for (const std::string& name : block_names(i, block_parts)) names.push_back(name);
  }
  names.push_back("ln_final.hook_normalized");
  names.push_back("logits");
  return names;
}

}  // namespace

TEST_CASE("hooks: a point without hooks leaves the very same tensor") {
  HookPoint point("hook_x");
  Tensor x = test::random_input({2, 3}, 1);
  const Tensor before = x;
  point.apply(x);
  CHECK(x.same(before));
  CHECK_FALSE(point.active());
}

TEST_CASE("hooks: readers see the value, replacers change it, in the order added") {
  HookPoint point("hook_x");
  const Tensor x = test::random_input({2, 3}, 2);
  Tensor seen_first, seen_last;
  point.add(read_hook("hook_x", [&](const Tensor& v) { seen_first = v; }));
  const HookHandle doubling =
      point.add(replace_hook("hook_x", [](const Tensor& v) { return core::mul(v, 2.0); }));
  point.add(read_hook("hook_x", [&](const Tensor& v) { seen_last = v; }));
  Tensor value = x;
  point.apply(value);
  CHECK(seen_first.same(x));
  CHECK(seen_last.same(value));
  CHECK(test::max_abs_diff(value, core::mul(x, 2.0)) == 0.0);

  point.remove(doubling);
  value = x;
  point.apply(value);
  CHECK(value.same(x));  // only readers left
  point.clear();
  CHECK_FALSE(point.active());
}

TEST_CASE("hooks: bad hooks and replacements name the point") {
  HookPoint point("blocks.0.hook_resid_pre");
  CHECK_THROWS_WITH_AS(point.add(Hook{"blocks.0.hook_resid_pre", nullptr, nullptr}),
                       doctest::Contains("needs exactly one of a reader and a replacer; got neither"),
                       std::invalid_argument);
  point.add(replace_hook("blocks.0.hook_resid_pre",
                         [](const Tensor&) { return Tensor::zeros({2, 4}); }));
  Tensor x = test::random_input({2, 3}, 3);
  CHECK_THROWS_WITH_AS(point.apply(x),
                       doctest::Contains("hook at 'blocks.0.hook_resid_pre': the replacement must "
                                         "have the activation's shape [2, 3] and dtype float32; "
                                         "got [2, 4] float32"),
                       std::invalid_argument);

  HookPoint pattern("blocks.0.attn.hook_pattern", HookPoint::Access::read_only);
  CHECK_THROWS_WITH_AS(pattern.add(replace_hook("p", [](const Tensor& v) { return v; })),
                       doctest::Contains("hook point 'blocks.0.attn.hook_pattern' is read-only"),
                       std::invalid_argument);
  CHECK_NOTHROW(pattern.add(read_hook("p", [](const Tensor&) {})));
  CHECK_THROWS_WITH_AS(pattern.remove(HookHandle{&point, 0}),
                       doctest::Contains("the handle belongs to point 'blocks.0.hook_resid_pre'"),
                       std::invalid_argument);
}

TEST_CASE("hooks: a transformer names its points for each kind of block") {
  core::Rng rng(5);
  const std::vector<std::string> attention{"attn.hook_q", "attn.hook_k", "attn.hook_v",
                                           "attn.hook_pattern", "attn.hook_z"};
  auto with_attention = [&](std::vector<std::string> before, std::vector<std::string> after) {
    before.insert(before.end(), attention.begin(), attention.end());
    before.insert(before.end(), after.begin(), after.end());
    return before;
  };
  SUBCASE("pre-LN with an ffn") {
    CHECK(small_model("", rng)->hook_names() ==
          model_names(with_attention({"hook_resid_pre", "ln1.hook_normalized"},
                                     {"hook_attn_out", "hook_resid_mid", "ln2.hook_normalized",
                                      "hook_mlp_out", "hook_resid_post"})));
  }
  SUBCASE("post-LN: the norms' outputs are the residual stream, so no ln*.hook_normalized") {
    CHECK(small_model("norm_placement: post\n", rng)->hook_names() ==
          model_names(with_attention({"hook_resid_pre"}, {"hook_attn_out", "hook_resid_mid",
                                                          "hook_mlp_out", "hook_resid_post"})));
  }
  SUBCASE("attention-only") {
    CHECK(small_model("ffn: none\n", rng)->hook_names() ==
          model_names(with_attention({"hook_resid_pre", "ln1.hook_normalized"},
                                     {"hook_attn_out", "hook_resid_post"})));
  }
}

TEST_CASE("hooks: a transformer finds a point by name, or suggests the closest") {
  core::Rng rng(6);
  const auto model = small_model("", rng);
  CHECK(model->hook_point("blocks.1.attn.hook_z").name() == "blocks.1.attn.hook_z");
  CHECK(model->hook_point("blocks.0.attn.hook_pattern").read_only());
  CHECK(model->hook_point("hook_pos_embed").read_only());
  CHECK_FALSE(model->hook_point("blocks.0.hook_resid_pre").read_only());
  CHECK_THROWS_WITH_AS(model->hook_point("blocks.0.hook_resid_pr"),
                       doctest::Contains("no hook point 'blocks.0.hook_resid_pr' in this model "
                                         "(did you mean 'blocks.0.hook_resid_pre'?)"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(model->add_hook(replace_hook("blocks.1.attn.hook_pattern",
                                                    [](const Tensor& p) { return p; })),
                       doctest::Contains("'blocks.1.attn.hook_pattern' is read-only"),
                       std::invalid_argument);

  HookPoint stranger("hook_x");
  CHECK_THROWS_WITH_AS(model->remove_hook(HookHandle{&stranger, 0}),
                       doctest::Contains("not of a hook point of this model"), std::invalid_argument);
}

TEST_CASE("hooks: a replacer at a point changes the forward; removed, the forward is as before") {
  core::Rng rng(7);
  const auto model = small_model("", rng);
  model->eval();
  const core::Ids ids = test::random_ids({2, 5}, 11, 8);
  const Tensor clean = model->forward(ids);
  const HookHandle handle = model->add_hook(replace_hook(
      "blocks.1.hook_mlp_out", [](const Tensor& v) { return core::mul(v, 0.0); }));
  const Tensor changed = model->forward(ids);
  CHECK(test::max_abs_diff(clean, changed) > 1e-3);
  model->remove_hook(handle);
  CHECK(model->forward(ids).to_vector() == clean.to_vector());
}
