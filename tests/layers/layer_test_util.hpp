// Shared by the layer tests: random inputs and token ids, value comparisons, the model
// config section from text; check_gradients comes from the core tests' helper.
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

#include "core/ops.hpp"
#include "core/random.hpp"
#include "strict_yaml/config_node.hpp"
#include "tests/core/gradcheck_util.hpp"

namespace qkv::test {

inline core::Tensor random_input(const core::Shape& shape, std::uint64_t seed,
                                 core::DType dtype = core::DType::f32) {
  core::Rng rng(seed);
  return core::Tensor::randn(shape, rng, dtype);
}

inline core::Ids random_ids(const core::Shape& shape, std::size_t vocab, std::uint64_t seed) {
  core::Rng rng(seed);
  core::Ids ids{shape, std::vector<std::int32_t>(core::shape_numel(shape))};
  for (auto& id : ids.values) id = static_cast<std::int32_t>(rng.below(vocab));
  return ids;
}

// Largest |a - b| over all elements (shapes must match).
inline double max_abs_diff(const core::Tensor& a, const core::Tensor& b) {
  REQUIRE(a.shape() == b.shape());
  const std::vector<double> x = a.to_vector(), y = b.to_vector();
  double worst = 0.0;
  for (std::size_t i = 0; i < x.size(); ++i) worst = std::max(worst, std::abs(x[i] - y[i]));
  return worst;
}

inline double max_abs(const core::Tensor& a) {
  double worst = 0.0;
  for (double v : a.to_vector()) worst = std::max(worst, std::abs(v));
  return worst;
}

// The mapping in `text` as the config section `model` of a file "test.yaml" (as the
// trainer hands it over): `text` starts on the file's second line, indented by two.
inline ConfigNode model_config(const std::string& text) {
  std::string file = "model:\n";
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) file += "  " + line + "\n";
  return ConfigNode::parse(file, "test.yaml").child("model");
}

}  // namespace qkv::test
