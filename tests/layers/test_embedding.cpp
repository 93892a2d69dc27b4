// Embedding: lookup shape and values, N(0, 1) init, and the scatter-add gradient.
#include <doctest/doctest.h>

#include <cmath>

#include "core/ops.hpp"
#include "layers/embedding.hpp"
#include "layer_test_util.hpp"

using namespace qkv;
using namespace qkv::layers;
using core::Tensor;

TEST_CASE("embedding: shape, parameter and rows picked by id") {
  core::Rng rng(1);
  Embedding table(10, 4, rng);
  CHECK(table.parameter_count() == 40);
  CHECK(table.named_parameters()[0].name == "weight");
  CHECK(table.named_parameters()[0].kind == ParamKind::embedding);
  const core::Ids ids{{2, 3}, {0, 9, 3, 3, 1, 0}};
  const Tensor x = table.forward(ids);
  CHECK(x.shape() == core::Shape{2, 3, 4});
  const std::vector<double> w = table.weight().to_vector(), v = x.to_vector();
  for (std::size_t c = 0; c < 4; ++c) {
    CHECK(v[1 * 4 + c] == w[9 * 4 + c]);
    CHECK(v[5 * 4 + c] == w[0 * 4 + c]);
  }
}

TEST_CASE("embedding: init is N(0, 1)") {
  core::Rng rng(2);
  Embedding table(100, 100, rng);
  double mean = 0, square = 0;
  for (double v : table.weight().to_vector()) {
    mean += v;
    square += v * v;
  }
  mean /= 1e4;
  const double sd = std::sqrt(square / 1e4 - mean * mean);
  CHECK(std::abs(mean) < 0.03);
  CHECK(std::abs(sd - 1.0) < 0.03);
}

TEST_CASE("embedding: gradient adds up over repeated ids") {
  core::Rng rng(3);
  Embedding table(5, 2, rng);
  core::sum(table.forward({{4}, {3, 1, 3, 3}})).backward();
  CHECK(table.weight().grad().to_vector() == std::vector<double>{0, 0, 1, 1, 0, 0, 3, 3, 0, 0});
}
