// TransformerBlock: pre-LN, post-LN and attention-only wiring, checked against the same
// sums written out with the block's own sublayers; names and counts.
#include <doctest/doctest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "core/ops.hpp"
#include "layers/transformer_block.hpp"
#include "layer_test_util.hpp"

using namespace qkv;
using namespace qkv::layers;
using core::DType;
using core::Tensor;

namespace {

TransformerBlockOptions options(NormPlacement norm, bool ffn) {
  TransformerBlockOptions o;
  o.attention.d_model = 8;
  o.attention.heads = 2;
  o.norm = norm;
  if (ffn) o.ffn = feed_forward_builder({8, 16, Activation::gelu});
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
    TransformerBlock block(options(NormPlacement::pre, true), rng);
    block.to(DType::f64);
    const Tensor h = core::add(x, block.attention().forward(norm(block, "ln1", x)));
    const Tensor expected = core::add(h, block.ffn()->forward(norm(block, "ln2", h)));
    CHECK(test::max_abs_diff(block.forward(x), expected) < 1e-12);
    CHECK(names_of(block) == std::vector<std::string>{"ln1", "attn", "ln2", "ffn"});
    CHECK(block.parameter_count() == 2 * 16 + 4 * 72 + (8 * 16 + 16) + (16 * 8 + 8));
  }
  SUBCASE("post-LN: ln1(x + attn(x)), then ln2(. + ffn(.))") {
    core::Rng rng(3);
    TransformerBlock block(options(NormPlacement::post, true), rng);
    block.to(DType::f64);
    const Tensor h = norm(block, "ln1", core::add(x, block.attention().forward(x)));
    const Tensor expected = norm(block, "ln2", core::add(h, block.ffn()->forward(h)));
    CHECK(test::max_abs_diff(block.forward(x), expected) < 1e-12);
  }
  SUBCASE("attention-only: no ln2, no ffn") {
    core::Rng rng(4);
    TransformerBlock block(options(NormPlacement::pre, false), rng);
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
  TransformerBlockOptions o = options(NormPlacement::pre, true);
  o.dropout = 0.3;
  CHECK_THROWS_WITH_AS(TransformerBlock(o, rng), doctest::Contains("dropout > 0 needs a dropout_rng"),
                       std::invalid_argument);
  o.dropout_rng = &dropout_rng;
  TransformerBlock block(o, rng);
  const Tensor x = test::random_input({2, 4, 8}, 7);
  block.eval();
  const Tensor eval = block.forward(x);
  CHECK(test::max_abs_diff(eval, block.forward(x)) == 0.0);
  block.train();
  CHECK(test::max_abs_diff(eval, block.forward(x)) > 1e-4);
}
