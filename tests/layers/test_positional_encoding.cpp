// Positional encodings: learned rows added per position, the sinusoid table's values, and
// the error for sequences longer than max_len.
#include <doctest/doctest.h>

#include <cmath>

#include "core/ops.hpp"
#include "layers/positional_encoding.hpp"
#include "layer_test_util.hpp"

using namespace qkv;
using namespace qkv::layers;
using core::DType;
using core::Tensor;

TEST_CASE("positional: learned embedding adds row t to position t of every sequence") {
  core::Rng rng(1);
  LearnedPositionalEmbedding pos(6, 3, rng);
  CHECK(pos.parameter_count() == 18);
  CHECK(pos.named_parameters()[0].name == "weight");
  const Tensor x = Tensor::zeros({2, 4, 3});
  const Tensor y = pos.forward(x);
  CHECK(y.shape() == core::Shape{2, 4, 3});
  const std::vector<double> w = pos.weight().to_vector(), v = y.to_vector();
  for (std::size_t b = 0; b < 2; ++b)
    for (std::size_t i = 0; i < 4 * 3; ++i) CHECK(v[b * 12 + i] == w[i]);
  core::sum(y).backward();
  // Rows past T = 4 get no gradient; used rows get one per sequence.
  CHECK(pos.weight().grad().to_vector() ==
        std::vector<double>{2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 0, 0, 0, 0, 0, 0});
  CHECK_THROWS_WITH_AS(pos.forward(Tensor::zeros({1, 7, 3})),
                       doctest::Contains("sequence length 7 exceeds max_len 6"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(pos.forward(Tensor::zeros({1, 2, 4})),
                       doctest::Contains("expected input (B, T, 3), got [1, 2, 4]"),
                       std::invalid_argument);
}

TEST_CASE("positional: sinusoidal table is sin/cos of p / 10000^(2i/C), without parameters") {
  for (std::size_t dim : {6u, 5u}) {  // odd widths end on a sine
    CAPTURE(dim);
    SinusoidalPositionalEncoding pos(10, dim);
    CHECK(pos.parameter_count() == 0);
    const std::vector<double> y = pos.forward(Tensor::zeros({1, 10, dim}, DType::f64)).to_vector();
    for (std::size_t p = 0; p < 10; ++p) {
      for (std::size_t i = 0; i < dim; ++i) {
        const double angle = p / std::pow(10000.0, double(i - i % 2) / dim);
        CHECK(y[p * dim + i] == doctest::Approx(i % 2 == 0 ? std::sin(angle) : std::cos(angle)));
      }
    }
    // float32 activations get a float32 table.
    const Tensor y32 = pos.forward(Tensor::ones({2, 3, dim}));
    CHECK(y32.dtype() == DType::f32);
    CHECK(y32.at({1, 2, 0}) == doctest::Approx(1.0 + std::sin(2.0)));
  }
  SinusoidalPositionalEncoding pos(4, 2);
  CHECK_THROWS_WITH_AS(pos.forward(Tensor::zeros({1, 5, 2})),
                       doctest::Contains("sequence length 5 exceeds max_len 4"), std::invalid_argument);
}
