// nn ops: forward values against PyTorch (fixture made by
// tests/fixtures/core/make_core_fixture.py) and closed forms, gradient checks, and errors.
#include <doctest/doctest.h>

#include <cmath>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>

#include "tests/core/gradcheck_util.hpp"

using namespace qkv::core;
using qkv::test::check_gradients;
using qkv::test::rand64;

namespace {

const nlohmann::json& reference() {
  static const nlohmann::json data = [] {
    std::ifstream in(std::string(QKV_SOURCE_DIR) + "/tests/fixtures/core/nn_reference.json");
    REQUIRE(in.good());
    return nlohmann::json::parse(in);
  }();
  return data;
}

Tensor tensor_of(const nlohmann::json& values, const Shape& shape) {
  return Tensor::from_vector(values.get<std::vector<double>>(), shape);
}

void check_close(const Tensor& got, const nlohmann::json& want, double tol = 1e-12) {
  const std::vector<double> g = got.to_vector();
  const std::vector<double> w = want.get<std::vector<double>>();
  REQUIRE(g.size() == w.size());
  for (std::size_t i = 0; i < g.size(); ++i) {
    CAPTURE(i);
    CHECK(g[i] == doctest::Approx(w[i]).epsilon(tol).scale(1.0));
  }
}

}  // namespace

TEST_CASE("softmax, log_softmax, gelu, layer_norm, cross_entropy: forward matches PyTorch") {
  const auto& ref = reference();
  {
    const auto& c = ref["softmax"];
    check_close(softmax(tensor_of(c["x"], c["shape"].get<Shape>())), c["y"]);
  }
  {
    const auto& c = ref["log_softmax"];
    check_close(log_softmax(tensor_of(c["x"], c["shape"].get<Shape>())), c["y"]);
  }
  {
    const auto& c = ref["gelu"];
    check_close(gelu(tensor_of(c["x"], c["shape"].get<Shape>())), c["y"]);
  }
  {
    const auto& c = ref["layer_norm"];
    const Shape shape = c["shape"].get<Shape>();
    check_close(layer_norm(tensor_of(c["x"], shape), tensor_of(c["weight"], {shape.back()}),
                           tensor_of(c["bias"], {shape.back()}), 1e-5),
                c["y"], 1e-10);
  }
  {
    const auto& c = ref["cross_entropy"];
    const Shape shape = c["shape"].get<Shape>();
    Ids targets{{shape[0], shape[1]}, c["targets"].get<std::vector<std::int32_t>>()};
    const auto mask = c["mask"].get<std::vector<std::uint8_t>>();
    CHECK(cross_entropy(tensor_of(c["logits"], shape), targets, mask).item() ==
          doctest::Approx(c["loss"].get<double>()).epsilon(1e-12));
  }
}

TEST_CASE("softmax and cross_entropy: closed forms and stability with large logits") {
  Tensor x = Tensor::from_vector(std::vector<double>{0.0, std::log(3.0)}, {2});
  CHECK(softmax(x).to_vector() == std::vector<double>{0.25, 0.75});
  Tensor big = Tensor::from_vector(std::vector<float>{1000.f, 1000.f, -1000.f}, {3});
  const std::vector<double> p = softmax(big).to_vector();
  CHECK(p[0] == 0.5);
  CHECK(p[2] == 0.0);
  CHECK(std::isfinite(log_softmax(big).at({0})));
  // Uniform logits over V classes: loss = log V.
  Ids t{{2}, {0, 3}};
  CHECK(cross_entropy(Tensor::zeros({2, 5}), t).item() == doctest::Approx(std::log(5.0)));
  // A fully masked softmax row gives zeros, not NaN.
  Tensor masked = causal_mask(Tensor::zeros({1, 3}));
  CHECK(softmax(masked).to_vector() == std::vector<double>{1, 0, 0});
}

TEST_CASE("layer_norm: normalized rows have zero mean and unit variance") {
  Tensor y = layer_norm(rand64({4, 8}, 3, -5, 5), Tensor(), Tensor(), 1e-12);
  for (std::size_t r = 0; r < 4; ++r) {
    double m = 0, v = 0;
    for (std::size_t j = 0; j < 8; ++j) m += y.at({r, j}) / 8;
    for (std::size_t j = 0; j < 8; ++j) v += (y.at({r, j}) - m) * (y.at({r, j}) - m) / 8;
    CHECK(m == doctest::Approx(0.0).scale(1.0));
    CHECK(v == doctest::Approx(1.0));
  }
}

TEST_CASE("nn ops: backward matches finite differences") {
  check_gradients("softmax", [](const std::vector<Tensor>& in) { return softmax(in[0]); }, {rand64({3, 5}, 1, -2, 2)});
  check_gradients("log_softmax", [](const std::vector<Tensor>& in) { return log_softmax(in[0]); },
                  {rand64({2, 3, 4}, 2, -2, 2)});
  check_gradients("softmax causal", [](const std::vector<Tensor>& in) { return softmax(causal_mask(in[0])); },
                  {rand64({2, 4, 4}, 3)});
  check_gradients("masked_fill",
                  [](const std::vector<Tensor>& in) {
                    Tensor mask = Tensor::from_vector(std::vector<double>{1, 0, 0, 1}, {4});
                    return masked_fill(in[0], mask, 0.5);
                  },
                  {rand64({3, 4}, 4)});
  for (bool affine : {false, true}) {
    CAPTURE(affine);
    check_gradients("layer_norm",
                    [affine](const std::vector<Tensor>& in) {
                      return affine ? layer_norm(in[0], in[1], in[2]) : layer_norm(in[0], Tensor(), Tensor());
                    },
                    {rand64({2, 3, 5}, 5, -2, 2), rand64({5}, 6), rand64({5}, 7)});
  }
  // A weight without a bias and a bias without a weight: dw or db alone in backward.
  check_gradients("layer_norm (weight only)",
                  [](const std::vector<Tensor>& in) { return layer_norm(in[0], in[1], Tensor()); },
                  {rand64({2, 3, 5}, 5, -2, 2), rand64({5}, 6)});
  check_gradients("layer_norm (bias only)",
                  [](const std::vector<Tensor>& in) { return layer_norm(in[0], Tensor(), in[1]); },
                  {rand64({2, 3, 5}, 5, -2, 2), rand64({5}, 7)});
  check_gradients("embedding (repeated ids)",
                  [](const std::vector<Tensor>& in) { return embedding(in[0], Ids{{2, 3}, {1, 0, 1, 3, 1, 0}}); },
                  {rand64({4, 3}, 8)});
  check_gradients("cross_entropy",
                  [](const std::vector<Tensor>& in) { return cross_entropy(in[0], Ids{{2, 3}, {1, 0, 4, 2, 2, 3}}); },
                  {rand64({2, 3, 5}, 9, -2, 2)});
  check_gradients("cross_entropy masked",
                  [](const std::vector<Tensor>& in) {
                    return cross_entropy(in[0], Ids{{2, 3}, {1, 0, 4, 2, 2, 3}}, {1, 0, 1, 0, 0, 1});
                  },
                  {rand64({2, 3, 5}, 10, -2, 2)});
  check_gradients("dropout",
                  [](const std::vector<Tensor>& in) {
                    Rng rng(5);  // the same mask on every call
                    return dropout(in[0], 0.3, true, rng);
                  },
                  {rand64({4, 5}, 11)});
}

TEST_CASE("embedding: rows by id, scatter-add over repeated ids") {
  Tensor w = Tensor::from_vector(std::vector<double>{0, 1, 10, 11, 20, 21}, {3, 2}).requires_grad_();
  Tensor e = embedding(w, Ids{{3}, {2, 0, 2}});
  CHECK(e.shape() == Shape{3, 2});
  CHECK(e.to_vector() == std::vector<double>{20, 21, 0, 1, 20, 21});
  sum(e).backward();
  CHECK(w.grad().to_vector() == std::vector<double>{1, 1, 0, 0, 2, 2});
}

TEST_CASE("dropout: seeded, scaled, identity when not training") {
  Tensor x = Tensor::ones({1000});
  Rng a(1), b(1);
  const std::vector<double> ya = dropout(x, 0.25, true, a).to_vector();
  CHECK(ya == dropout(x, 0.25, true, b).to_vector());
  std::size_t zeros = 0;
  for (double v : ya) {
    CHECK((v == 0.0 || v == doctest::Approx(1.0 / 0.75)));
    zeros += v == 0.0;
  }
  CHECK(zeros > 200);
  CHECK(zeros < 300);
  Rng c(1);
  CHECK(dropout(x, 0.25, false, c).same(x));
}

TEST_CASE("nn ops: errors name the op and what is wrong") {
  CHECK_THROWS_WITH_AS(embedding(Tensor::zeros({3, 2}), Ids{{2}, {1, 3}}),
                       doctest::Contains("embedding: id 3 out of range for 3 rows"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(cross_entropy(Tensor::zeros({2, 4}), Ids{{2}, {1, 4}}),
                       doctest::Contains("cross_entropy: target 4 at position 1 out of range for 4 classes"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(cross_entropy(Tensor::zeros({2, 4}), Ids{{3}, {1, 2, 0}}),
                       doctest::Contains("targets must have the logits' shape without the last axis (shapes [2, 4] and [3])"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(cross_entropy(Tensor::zeros({2, 4}), Ids{{2}, {1, 2}}, {0, 0}),
                       doctest::Contains("the mask counts no position"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(layer_norm(Tensor::zeros({2, 4}), Tensor::ones({3}), Tensor()),
                       doctest::Contains("layer_norm: weight and bias must match the last axis (shapes [2, 4] and [3])"),
                       std::invalid_argument);
  Rng rng(0);
  CHECK_THROWS_WITH_AS(dropout(Tensor::zeros({2}), 1.0, true, rng), doctest::Contains("p must be in [0, 1)"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(masked_fill(Tensor::zeros({2, 3}), Tensor::zeros({2}), 0.0),
                       doctest::Contains("masked_fill"), std::invalid_argument);
}
