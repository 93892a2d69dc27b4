// inspect/patterns: pattern scores of hand-built maps (each pure kind of head scores 1 on
// its own pattern), the roles of an input's positions, and maps read from a model.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "inspect/attention_maps.hpp"
#include "inspect/patterns.hpp"
#include "inspect_test_util.hpp"

using namespace qkv;
using namespace qkv::inspect;

namespace {

// A T × T map whose row i puts all its weight on key target(i).
template <class F>
Matrix pure_map(std::size_t T, F target) {
  Matrix m(T, T);
  for (std::size_t i = 0; i < T; ++i) m(i, target(i)) = 1.0;
  return m;
}

}  // namespace

TEST_CASE("pattern_scores: each pure head scores 1 on its own pattern") {
  // copy, prompt "a b c d": the model reads a b c d SEP a b c (8 positions).
  const auto task = test::make_task("{type: copy, symbols: 4, min_len: 4, max_len: 4}");
  const std::vector<tasks::Token> ids = task->encode("a b c d SEP a b c");
  const PositionRoles roles = position_roles(ids, *task);
  REQUIRE(roles.sep == 4);
  CHECK(roles.sources[3].empty());
  CHECK(roles.sources[4] == std::vector<std::size_t>{0});  // SEP predicts answer token 0
  CHECK(roles.sources[7] == std::vector<std::size_t>{3});
  const std::size_t T = ids.size();

  SUBCASE("previous token") {
    const PatternScores s = pattern_scores(pure_map(T, [](std::size_t i) { return i ? i - 1 : 0; }), roles);
    CHECK(*s.previous == doctest::Approx(1.0));
    CHECK(*s.self == doctest::Approx(0.0));
    CHECK(*s.first == doctest::Approx(1.0 / 7.0));  // row 1's previous token is the first
  }
  SUBCASE("self") {
    const PatternScores s = pattern_scores(pure_map(T, [](std::size_t i) { return i; }), roles);
    CHECK(*s.self == doctest::Approx(1.0));
    CHECK(*s.previous == doctest::Approx(0.0));
  }
  SUBCASE("first token") {
    const PatternScores s = pattern_scores(pure_map(T, [](std::size_t) { return std::size_t{0}; }), roles);
    CHECK(*s.first == doctest::Approx(1.0));
    CHECK(*s.self == doctest::Approx(0.0));
  }
  SUBCASE("SEP, from the rows that read the answer") {
    const PatternScores s = pattern_scores(pure_map(T, [](std::size_t i) { return i < 4 ? i : 4; }), roles);
    CHECK(*s.sep == doctest::Approx(1.0));
  }
  SUBCASE("source: the prompt position the answer token is copied from") {
    const PatternScores s = pattern_scores(pure_map(T, [](std::size_t i) { return i < 4 ? i : i - 4; }), roles);
    CHECK(*s.source == doctest::Approx(1.0));
    CHECK(*s.sep == doctest::Approx(0.0));  // row 4 attends to position 0, not SEP
  }
  SUBCASE("uniform attention over the visible keys") {
    Matrix m(T, T);
    for (std::size_t i = 0; i < T; ++i)
      for (std::size_t j = 0; j <= i; ++j) m(i, j) = 1.0 / static_cast<double>(i + 1);
    const PatternScores s = pattern_scores(m, roles);
    double expected = 0;
    for (std::size_t i = 1; i < T; ++i) expected += 1.0 / static_cast<double>(i + 1);
    CHECK(*s.previous == doctest::Approx(expected / 7.0));
    CHECK(*s.source == doctest::Approx((1.0 / 5 + 1.0 / 6 + 1.0 / 7 + 1.0 / 8) / 4.0));
  }
}

TEST_CASE("pattern_scores: an input without SEP has no sep or source score") {
  const auto task = test::make_task("{type: copy, symbols: 4, min_len: 1, max_len: 4}");
  const PositionRoles roles = position_roles(task->encode("a b c"), *task);
  CHECK_FALSE(roles.sep.has_value());
  const PatternScores s = pattern_scores(Matrix::identity(3), roles);
  CHECK_FALSE(s.sep.has_value());
  CHECK_FALSE(s.source.has_value());
  CHECK(*s.self == doctest::Approx(1.0));
  CHECK_THROWS_WITH_AS(pattern_scores(Matrix::identity(4), roles),
                       doctest::Contains("a map of 4 x 4 for an input of 3 positions"),
                       std::invalid_argument);
}

TEST_CASE("position_roles: agreement's answer row points at the subject, recall's at the value") {
  const auto agreement = test::make_task("{type: agreement}");
  const PositionRoles a = position_roles(agreement->encode("the cats near the dog SEP"), *agreement);
  CHECK(a.sources[5] == std::vector<std::size_t>{1});
  const auto recall = test::make_task("{type: recall, keys: 4, values: 4, pairs: 2, queries: 1}");
  const PositionRoles r = position_roles(recall->encode("a 1 b 2 b SEP"), *recall);
  CHECK(r.sources[5] == std::vector<std::size_t>{3});
}

TEST_CASE("collect_attention: one sample per input, rows summing to 1, modes restored") {
  const auto task = test::make_task("{type: copy, symbols: 6, min_len: 3, max_len: 5}");
  const auto model = test::make_model("d_model: 16\nheads: 2\nlayers: 2\n", *task);
  model->train();
  const std::vector<std::vector<tasks::Token>> inputs = {task->encode("a b c SEP a b"),
                                                         task->encode("f e")};
  const std::vector<AttentionSample> samples = collect_attention(*model, *task, inputs);
  REQUIRE(samples.size() == 2);
  CHECK(model->is_training());
  CHECK(samples[1].tokens == std::vector<std::string>{"f", "e"});
  for (const AttentionSample& s : samples) {
    REQUIRE(s.maps.size() == 2);
    for (const std::vector<Matrix>& layer : s.maps) {
      REQUIRE(layer.size() == 2);
      for (const Matrix& map : layer) {
        REQUIRE(map.rows == s.ids.size());
        for (std::size_t i = 0; i < map.rows; ++i) {
          double sum = 0;
          for (std::size_t j = 0; j < map.cols; ++j) sum += map(i, j);
          CHECK(sum == doctest::Approx(1.0));
          if (i + 1 < map.cols) CHECK(map(i, i + 1) == 0.0);  // causal
        }
      }
    }
  }
  const auto scores = pooled_pattern_scores(samples);
  REQUIRE(scores.size() == 2);
  CHECK(scores[0][0].source.has_value());

  CHECK_THROWS_WITH_AS(collect_attention(*model, *task, {{}}), doctest::Contains("input 0 is empty"),
                       std::invalid_argument);
  const std::size_t limit = model->max_len();
  const std::vector<std::vector<tasks::Token>> too_long = {
      std::vector<tasks::Token>(limit + 1, tasks::Task::sep_id)};
  CHECK_THROWS_WITH_AS(collect_attention(*model, *task, too_long),
                       doctest::Contains(("has " + std::to_string(limit + 1) +
                                          " tokens; the model reads at most " +
                                          std::to_string(limit)).c_str()),
                       std::invalid_argument);
}

TEST_CASE("pattern scores: the trained copy model has a head that reads the source") {
  const test::TrainedRun& run = test::trained_copy_run();
  std::vector<std::vector<tasks::Token>> inputs;
  for (const tasks::Example& e : run.task->eval_examples(32, 5)) inputs.push_back(model_input(*run.task, e));
  const auto scores = pooled_pattern_scores(collect_attention(*run.model, *run.task, inputs));
  double best = 0;
  for (const auto& layer : scores)
    for (const PatternScores& head : layer) best = std::max(best, head.source.value());
  CHECK(best > 0.5);
}
