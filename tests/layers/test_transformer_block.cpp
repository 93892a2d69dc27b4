// TransformerBlock: pre-LN, post-LN and attention-only wiring, checked against the same
// sums written out with the block's own sublayers; names and counts.
#include <doctest/doctest.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "core/ops.hpp"
#include "layers/attention.hpp"
#include "layers/feed_forward.hpp"
#include "layers/layer_norm.hpp"
#include "layers/transformer_block.hpp"
#include "layer_test_util.hpp"

using namespace qkv;
using namespace qkv::layers;
using core::DType;
using core::Tensor;

namespace {

// The reference sublayers for C = 8, H = 2, d_ff = 16: attention first, then the ffn (the
// order a Transformer draws them in).
BlockLayers sublayers(bool ffn, core::Rng& rng) {
  MultiHeadAttentionOptions attention;
  attention.d_model = 8;
  attention.heads = 2;
  BlockLayers parts;
  parts.ln1 = std::make_shared<LayerNorm>(8);
  parts.attn = std::make_shared<MultiHeadAttention>(attention, rng);
  if (ffn) {
    parts.ln2 = std::make_shared<LayerNorm>(8);
    parts.ffn = std::make_shared<FeedForward>(FeedForwardOptions{8, 16, Activation::gelu}, rng);
  }
  return parts;
}

TransformerBlockOptions options(NormPlacement placement) {
  TransformerBlockOptions o;
  o.norm_placement = placement;
  return o;
}

std::vector<std::string> names_of(const Module& m) {
  std::vector<std::string> names;
  for (const auto& p : m.named_parameters()) names.push_back(p.name.substr(0, p.name.find('.')));
  names.erase(std::unique(names.begin(), names.end()), names.end());
  return names;
}

// The block's LayerNorm `name` applied to x, with its own parameters.
Tensor norm(const TransformerBlock& block, const std::string& name, const Tensor& x) {
  const auto state = block.state();
  return core::layer_norm(x, state.at(name + ".weight"), state.at(name + ".bias"), 1e-5);
}

}  // namespace

TEST_CASE("transformer_block: pre-LN, post-LN and attention-only wiring") {
  const Tensor x = test::random_input({2, 5, 8}, 1, DType::f64);
  SUBCASE("pre-LN: x + attn(ln1(x)), then + ffn(ln2(.))") {
    core::Rng rng(2);
    TransformerBlock block(sublayers(true, rng), options(NormPlacement::pre));
    block.to(DType::f64);
    const Tensor h = core::add(x, block.attention().forward(norm(block, "ln1", x)));
    const Tensor expected = core::add(h, block.ffn()->forward(norm(block, "ln2", h)));
    CHECK(test::max_abs_diff(block.forward(x), expected) < 1e-12);
    CHECK(names_of(block) == std::vector<std::string>{"ln1", "attn", "ln2", "ffn"});
    CHECK(block.parameter_count() == 2 * 16 + 4 * 72 + (8 * 16 + 16) + (16 * 8 + 8));
  }
  SUBCASE("post-LN: ln1(x + attn(x)), then ln2(. + ffn(.))") {
    core::Rng rng(3);
    TransformerBlock block(sublayers(true, rng), options(NormPlacement::post));
    block.to(DType::f64);
    const Tensor h = norm(block, "ln1", core::add(x, block.attention().forward(x)));
    const Tensor expected = norm(block, "ln2", core::add(h, block.ffn()->forward(h)));
    CHECK(test::max_abs_diff(block.forward(x), expected) < 1e-12);
  }
  SUBCASE("attention-only: no ln2, no ffn") {
    core::Rng rng(4);
    TransformerBlock block(sublayers(false, rng), options(NormPlacement::pre));
    block.to(DType::f64);
    CHECK(block.ffn() == nullptr);
    CHECK(names_of(block) == std::vector<std::string>{"ln1", "attn"});
    CHECK(block.parameter_count() == 16 + 4 * 72);
    const Tensor expected = core::add(x, block.attention().forward(norm(block, "ln1", x)));
    CHECK(test::max_abs_diff(block.forward(x), expected) < 1e-12);
  }
}

TEST_CASE("transformer_block: residual dropout needs a generator and acts only in training") {
  core::Rng rng(5), dropout_rng(6);
  const BlockLayers parts = sublayers(true, rng);
  TransformerBlockOptions o = options(NormPlacement::pre);
  o.dropout = 0.3;
  CHECK_THROWS_WITH_AS(TransformerBlock(parts, o), doctest::Contains("dropout > 0 needs a dropout_rng"),
                       std::invalid_argument);
  TransformerBlock block(parts, o, &dropout_rng);
  const Tensor x = test::random_input({2, 4, 8}, 7);
  block.eval();
  const Tensor eval = block.forward(x);
  CHECK(test::max_abs_diff(eval, block.forward(x)) == 0.0);
  block.train();
  CHECK(test::max_abs_diff(eval, block.forward(x)) > 1e-4);
}

TEST_CASE("transformer_block: missing sublayers are named") {
  core::Rng rng(8);
  BlockLayers parts = sublayers(true, rng);
  parts.ln2 = nullptr;
  CHECK_THROWS_WITH_AS(TransformerBlock(parts, options(NormPlacement::pre)),
                       doctest::Contains("ln2 and ffn come together; got ffn without ln2"),
                       std::invalid_argument);
  parts = sublayers(false, rng);
  parts.attn = nullptr;
  CHECK_THROWS_WITH_AS(TransformerBlock(parts, options(NormPlacement::pre)),
                       doctest::Contains("ln1 and attn are required"), std::invalid_argument);
}
