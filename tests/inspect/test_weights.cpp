// inspect/weights: the QK and OV circuits are the bilinear form and the map the attention
// really computes; their statistics on known matrices; `projections: none` is the raw dot
// product with every head the same head, and a trained learned-projection copy model is
// neither.
#include <doctest/doctest.h>

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "core/ops.hpp"
#include "core/random.hpp"
#include "inspect/attention_maps.hpp"
#include "inspect/inspection.hpp"
#include "inspect/text_report.hpp"
#include "inspect/weights.hpp"
#include "inspect_test_util.hpp"
#include "layers/attention.hpp"

using namespace qkv;
using namespace qkv::inspect;
using layers::MultiHeadAttention;
using layers::MultiHeadAttentionOptions;
using layers::Projection;

namespace {

bool is_bias(const std::string& name) {
  return name.size() >= 4 && name.compare(name.size() - 4, 4, "bias") == 0;
}

// Sets every bias of the layer (a frozen one too) to zero, so that scores and outputs are
// the circuits alone.
void zero_biases(MultiHeadAttention& attention) {
  for (const core::NamedParameter& p : attention.named_parameters()) {
    core::Tensor value = p.tensor;  // a handle to the parameter itself
    if (is_bias(p.name)) value.fill_(0);
  }
  for (const layers::NamedBuffer& b : attention.named_buffers()) {
    core::Tensor value = b.tensor;
    if (is_bias(b.name)) value.fill_(0);
  }
}

// x (1, T, C) as T rows.
Matrix rows_of(const core::Tensor& x) {
  Matrix m(x.size(1), x.size(2));
  m.values = x.to_vector();
  return m;
}

}  // namespace

TEST_CASE("qk_circuit: softmax of x W_QK xᵀ is the layer's attention, in every projection mode") {
  const std::size_t C = 8, H = 2, T = 5;
  std::vector<MultiHeadAttentionOptions> variants;
  for (Projection wq : {Projection::learned, Projection::identity, Projection::frozen})
    for (Projection wk : {Projection::learned, Projection::identity}) {
      MultiHeadAttentionOptions o;
      o.wq = wq;
      o.wk = wk;
      variants.push_back(o);
    }
  for (layers::QkForm qk : {layers::QkForm::merged, layers::QkForm::tied}) {
    MultiHeadAttentionOptions o;
    o.qk = qk;
    variants.push_back(o);
  }
  for (MultiHeadAttentionOptions o : variants) {
    o.d_model = C;
    o.heads = H;
    CAPTURE(layers::describe(o));
    core::Rng rng(7);
    MultiHeadAttention attention(o, rng);
    zero_biases(attention);
    const core::Tensor x = core::Tensor::randn({1, T, C}, rng);
    attention.capture_attention(true);
    attention.forward(x);
    const std::vector<double> maps = attention.attention_map().to_vector();  // (1, H, T, T)
    const Matrix X = rows_of(x);
    for (std::size_t h = 0; h < H; ++h) {
      const Matrix W = qk_circuit(attention, h);
      REQUIRE(W.rows == C);
      REQUIRE(W.cols == C);
      for (std::size_t i = 0; i < T; ++i) {
        // Causal softmax over j <= i of x_i W x_jᵀ.
        std::vector<double> score(i + 1);
        double top = -1e300, total = 0;
        for (std::size_t j = 0; j <= i; ++j) {
          for (std::size_t a = 0; a < C; ++a)
            for (std::size_t b = 0; b < C; ++b) score[j] += X(i, a) * W(a, b) * X(j, b);
          top = std::max(top, score[j]);
        }
        for (double& s : score) total += (s = std::exp(s - top));
        for (std::size_t j = 0; j <= i; ++j)
          CHECK(maps[(h * T + i) * T + j] == doctest::Approx(score[j] / total).epsilon(1e-4));
      }
    }
  }
}

TEST_CASE("ov_circuit: with one position, the layer's output is W_OV summed over heads") {
  const std::size_t C = 8, H = 2;
  for (Projection wv : {Projection::learned, Projection::identity, Projection::frozen})
    for (Projection wo : {Projection::learned, Projection::identity, Projection::frozen}) {
      MultiHeadAttentionOptions o;
      o.d_model = C;
      // wo none (identity) needs the heads side by side to be C wide: H·Dv = C.
      o.heads = wv == Projection::identity && wo == Projection::identity ? 1 : H;
      o.wv = wv;
      o.wo = wo;
      CAPTURE(layers::describe(o));
      core::Rng rng(3);
      MultiHeadAttention attention(o, rng);
      zero_biases(attention);
      const core::Tensor x = core::Tensor::randn({1, 1, C}, rng);
      const std::vector<double> y = attention.forward(x).to_vector();  // attends to itself only
      const std::vector<double> xs = x.to_vector();
      std::vector<double> expected(C, 0.0);
      for (std::size_t h = 0; h < o.heads; ++h) {
        const Matrix W = ov_circuit(attention, h);
        for (std::size_t a = 0; a < C; ++a)
          for (std::size_t b = 0; b < C; ++b) expected[a] += W(a, b) * xs[b];
      }
      for (std::size_t a = 0; a < C; ++a) CHECK(y[a] == doctest::Approx(expected[a]).epsilon(1e-4));
    }
}

TEST_CASE("circuit_stats: identity, rank one, symmetric and antisymmetric matrices") {
  SUBCASE("a scaled identity is the raw dot product: cosine 1, symmetric, full rank") {
    const CircuitStats s = circuit_stats(Matrix::identity(6, 0.25));
    CHECK(s.identity_cosine == doctest::Approx(1.0));
    CHECK(s.symmetry == doctest::Approx(1.0));
    CHECK(s.effective_rank == doctest::Approx(6.0));
    CHECK(s.norm == doctest::Approx(0.25 * std::sqrt(6.0)));
    REQUIRE(s.top_singular_values.size() == kTopSingularValues);
    CHECK(s.top_singular_values[0] == doctest::Approx(0.25));
  }
  SUBCASE("rank one: effective rank 1, one singular value") {
    Matrix m(3, 3);
    const double u[3] = {1, 2, 3}, v[3] = {0, 1, -1};
    for (std::size_t i = 0; i < 3; ++i)
      for (std::size_t j = 0; j < 3; ++j) m(i, j) = u[i] * v[j];
    const CircuitStats s = circuit_stats(m);
    CHECK(s.effective_rank == doctest::Approx(1.0));
    REQUIRE(s.top_singular_values.size() == 3);
    CHECK(s.top_singular_values[0] == doctest::Approx(std::sqrt(14.0) * std::sqrt(2.0)));
    CHECK(s.top_singular_values[1] == doctest::Approx(0.0).epsilon(1e-9));
  }
  SUBCASE("a rotation by 90 degrees: antisymmetric, orthogonal to the identity") {
    Matrix m(2, 2);
    m(0, 1) = 1;
    m(1, 0) = -1;
    const CircuitStats s = circuit_stats(m);
    CHECK(s.symmetry == doctest::Approx(0.0));
    CHECK(s.identity_cosine == doctest::Approx(0.0));
    CHECK(s.effective_rank == doctest::Approx(2.0));
  }
  SUBCASE("diag(3, 1): the entropy of (3/4, 1/4)") {
    Matrix m(2, 2);
    m(0, 0) = 3;
    m(1, 1) = 1;
    const double entropy = -(0.75 * std::log(0.75) + 0.25 * std::log(0.25));
    CHECK(circuit_stats(m).effective_rank == doctest::Approx(std::exp(entropy)));
    CHECK(circuit_stats(m).identity_cosine == doctest::Approx(4.0 / (std::sqrt(10.0) * std::sqrt(2.0))));
  }
  CHECK_THROWS_WITH_AS(circuit_stats(Matrix(2, 3)), doctest::Contains("got 2 x 3"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(cosine_similarity(Matrix(2, 2), Matrix(2, 3)),
                       doctest::Contains("2 x 2 and 2 x 3"), std::invalid_argument);
}

TEST_CASE("analyze_weights: projections none is the raw dot product, every head the same") {
  const auto model = test::make_model("d_model: 16\nheads: 4\nlayers: 2\nattention: {projections: none}\n",
                                      *test::make_task("{type: copy, symbols: 6, min_len: 3, max_len: 5}"));
  const WeightReport report = analyze_weights(*model);
  REQUIRE(report.layers.size() == 2);
  for (const LayerWeightStats& layer : report.layers) {
    CHECK(layer.analyzed);
    REQUIRE(layer.heads.size() == 4);
    for (const HeadWeightStats& head : layer.heads) {
      CHECK_FALSE(head.wq_norm.has_value());
      CHECK_FALSE(head.wo_norm.has_value());
      CHECK(head.qk.identity_cosine == doctest::Approx(1.0));
      CHECK(head.qk.top_singular_values[0] == doctest::Approx(1.0 / 4.0));  // 1/sqrt(16)
      CHECK(head.ov.identity_cosine == doctest::Approx(1.0));
      CHECK(head.qk.effective_rank == doctest::Approx(16.0));
    }
    for (double v : layer.qk_similarity.values) CHECK(v == doctest::Approx(1.0));
    for (double v : layer.ov_similarity.values) CHECK(v == doctest::Approx(1.0));
  }
  CHECK(*mean_off_diagonal(report.layers[0].qk_similarity) == doctest::Approx(1.0));
}

TEST_CASE("analyze_weights: wq = wk = identity gives the raw dot product with learned values") {
  const auto model = test::make_model(
      "d_model: 16\nheads: 2\nlayers: 1\nattention: {wq: identity, wk: identity}\n",
      *test::make_task("{type: copy, symbols: 6, min_len: 3, max_len: 5}"));
  const WeightReport report = analyze_weights(*model);
  const LayerWeightStats& layer = report.layers[0];
  for (const HeadWeightStats& head : layer.heads) {
    CHECK(head.qk.identity_cosine == doctest::Approx(1.0));
    REQUIRE(head.wv_norm.has_value());
    CHECK(*head.wv_norm > 0);
    CHECK(head.ov.identity_cosine < 0.9);
  }
  for (double v : layer.qk_similarity.values) CHECK(v == doctest::Approx(1.0));
  CHECK(layer.ov_similarity(0, 1) < 0.9);  // the value sides are learned, each its own
}

TEST_CASE("analyze_weights: qk merged reports its one matrix, not two identity sides") {
  const auto task = test::make_task("{type: copy, symbols: 6, min_len: 3, max_len: 5}");
  const auto model = test::make_model("d_model: 16\nheads: 2\nlayers: 1\nattention: {qk: merged}\n", *task);
  const WeightReport report = analyze_weights(*model);
  const auto* attention =
      dynamic_cast<const MultiHeadAttention*>(&model->block(0).attention());
  REQUIRE(attention != nullptr);
  for (std::size_t h = 0; h < 2; ++h) {
    const HeadWeightStats& head = report.layers[0].heads[h];
    CHECK_FALSE(head.wq_norm.has_value());
    CHECK_FALSE(head.wk_norm.has_value());
    REQUIRE(head.wqk_norm.has_value());
    const Matrix w = qk_circuit(*attention, h);  // W_h scaled by score_scale()
    double sum = 0;
    for (double v : w.values) sum += v * v;
    CHECK(*head.wqk_norm == doctest::Approx(std::sqrt(sum) / attention->score_scale()));
  }
  // The text shows the merged matrix's norm where |Wq| and |Wk| are, never "id".
  const std::string text = text_report(inspect_model(*model, *task, InspectOptions{}));
  const std::string row = text.substr(text.find("\n    0    0 ") + 1, 40);
  CAPTURE(row);
  CHECK(row.find("Wqk ") != std::string::npos);
  CHECK(row.find(" id ") == std::string::npos);
}

TEST_CASE("analyze_weights: a trained learned-projection copy model is no raw dot product") {
  const test::TrainedRun& run = test::trained_copy_run();
  const WeightReport report = analyze_weights(*run.model);
  for (const LayerWeightStats& layer : report.layers) {
    for (const HeadWeightStats& head : layer.heads) {
      CHECK(std::abs(head.qk.identity_cosine) < 0.9);
      CHECK(head.wq_norm.value() > 0);
    }
    CHECK(*mean_off_diagonal(layer.qk_similarity) < 0.9);
  }
  // Its heads also look at different places.
  std::vector<std::vector<tasks::Token>> inputs;
  for (const tasks::Example& e : run.task->eval_examples(8, 11)) inputs.push_back(model_input(*run.task, e));
  const std::vector<Matrix> patterns = pattern_similarity(collect_attention(*run.model, *run.task, inputs));
  CHECK(*mean_off_diagonal(patterns.back()) < 0.99);
}

TEST_CASE("pattern_similarity: projections none has every head's maps the same") {
  const auto task = test::make_task("{type: copy, symbols: 6, min_len: 3, max_len: 5}");
  const auto model = test::make_model("d_model: 16\nheads: 4\nlayers: 1\nattention: {projections: none}\n", *task);
  std::vector<std::vector<tasks::Token>> inputs;
  for (const tasks::Example& e : task->eval_examples(4, 2)) inputs.push_back(model_input(*task, e));
  for (const Matrix& table : pattern_similarity(collect_attention(*model, *task, inputs)))
    for (double v : table.values) CHECK(v == doctest::Approx(1.0));
}
