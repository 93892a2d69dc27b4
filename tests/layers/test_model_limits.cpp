// The model section's sizes have upper bounds (issue #12): past them a ConfigError names the
// key before anything is allocated (`layers: 1000000` hung); and an error of the file's is
// blamed on the file even when --set made the section it shows up in.
#include <doctest/doctest.h>

#include <string>

#include "core/random.hpp"
#include "layers/build_model.hpp"

using namespace qkv;
using namespace qkv::layers;

namespace {

TransformerOptions read(const std::string& model) {
  return read_transformer_options(ConfigNode::parse("model: " + model + "\n", "m.yaml").child("model"));
}

}  // namespace

TEST_CASE("model options: sizes past their limits are errors at their keys") {
  const auto fails = [](const std::string& model, const std::string& text) {
    CAPTURE(model);
    CHECK_THROWS_WITH_AS(read(model), doctest::Contains(text.c_str()), ConfigError);
  };
  fails("{d_model: 32768, heads: 2, layers: 1}",
        "model.d_model: expected at most 16384 (layers/build_model.hpp), found 32768");
  fails("{d_model: 4096, heads: 4096, layers: 1}", "model.heads: expected at most 1024");
  fails("{d_model: 32, heads: 2, layers: 1000000}", "model.layers: expected at most 1024");
  fails("{d_model: 32, heads: 2, layers: 1, d_ff: 100000}", "model.d_ff: expected at most 65536");
  CHECK_NOTHROW(read("{d_model: 16384, heads: 1024, layers: 1024, d_ff: 65536}"));

  const TransformerOptions wide_ffn = read("{d_model: 8, heads: 2, layers: 1, ffn: {hidden: 70000}}");
  core::Rng rng(0);
  CHECK_THROWS_WITH_AS(build_model(wide_ffn, 5, 4, rng),
                       doctest::Contains("model.ffn.hidden: expected at most 65536"), ConfigError);
}

TEST_CASE("model options: heads that do not divide d_model are the file's error, not --set's") {
  // The attention section comes from --set alone; the heads from the file.
  ConfigNode root = ConfigNode::parse("model: {d_model: 16, heads: 3, layers: 1}\n", "bad.yaml");
  root.apply_override("model.attention.causal=true");
  CHECK_THROWS_WITH_AS(read_transformer_options(root.child("model")),
                       "bad.yaml:1:29: model.heads: expected a divisor of model.d_model (16): "
                       "wq and wk, learned or frozen, need d_model divisible by heads, found 3",
                       ConfigError);
}
