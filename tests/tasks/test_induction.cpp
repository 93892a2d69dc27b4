// InductionTask: the prompt is distinct tokens and a repeated cue, every answer token after
// the first is exactly the token after its earlier occurrence, the sources and distances
// point there, and impossible options are errors at the key.
#include <doctest/doctest.h>

#include <algorithm>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "strict_yaml/config_node.hpp"
#include "tasks/induction.hpp"
#include "tasks/registry.hpp"
#include "tasks/task.hpp"

using namespace qkv::tasks;
using qkv::ConfigError;
using qkv::ConfigNode;

namespace {

std::unique_ptr<Task> make(const std::string& section) {
  const ConfigNode root = ConfigNode::parse("task: " + section + "\n", "test.yaml");
  return make_task(root.section("task", "copy"), LossOn::answer, "");
}

// Where `token` first occurs in `prompt`.
std::size_t first_index(const std::vector<Token>& prompt, Token token) {
  return static_cast<std::size_t>(std::find(prompt.begin(), prompt.end(), token) - prompt.begin());
}

}  // namespace

TEST_CASE("induction: each answer token is the one after the previous token's earlier occurrence") {
  const auto task = make("{type: induction, symbols: 12, min_len: 5, max_len: 9, continuation: 3}");
  CHECK(task->vocab_size() == 3 + 12);
  CHECK(task->max_seq_len() == 9 + 1 + 1 + 1 + 3);  // context, cue, SEP, cue, continuation
  CHECK(task->max_answer_len() == 4);
  std::vector<Example> examples = task->eval_examples(200, 4);
  for (int i = 0; i < 200; ++i) examples.push_back(task->eval_examples(1, 100 + i)[0]);
  std::set<std::size_t> lengths, distances;
  for (const Example& e : examples) {
    REQUIRE(e.prompt.size() >= 6);
    const std::vector<Token> context(e.prompt.begin(), e.prompt.end() - 1);
    lengths.insert(context.size());
    CHECK(std::set<Token>(context.begin(), context.end()).size() == context.size());  // distinct
    const Token cue = e.prompt.back();
    const std::size_t occurrence = first_index(context, cue);
    REQUIRE(occurrence < context.size());  // the cue repeats a context token
    REQUIRE(e.answer.size() == 4);
    CHECK(e.answer[0] == cue);
    // [A][B] … [A] → [B]: the token after the earlier occurrence of the token before it.
    for (std::size_t j = 1; j < e.answer.size(); ++j) {
      const std::size_t earlier = first_index(context, e.answer[j - 1]);
      REQUIRE(earlier + 1 < context.size());
      CHECK(e.answer[j] == context[earlier + 1]);
    }
    CHECK(e.distance == static_cast<int>(e.prompt.size() - 1 - occurrence));
    distances.insert(static_cast<std::size_t>(e.distance));
    CHECK(e.group == -1);
    // The sources hold the answer's tokens.
    const auto sources = task->answer_sources(e.prompt);
    REQUIRE(sources.size() == e.answer.size());
    CHECK(sources[0] == std::vector<std::size_t>{occurrence, e.prompt.size() - 1});
    for (std::size_t j = 0; j < sources.size(); ++j)
      for (std::size_t s : sources[j]) CHECK(e.prompt[s] == e.answer[j]);
  }
  CHECK(lengths == std::set<std::size_t>{5, 6, 7, 8, 9});
  CHECK(distances.size() >= 6);  // cues near and far
}

TEST_CASE("induction: a batch carries each example's distance") {
  const auto task = make("{type: induction}");
  qkv::core::Rng rng(5);
  const Batch batch = task->sample(16, rng);
  REQUIRE(batch.distances.size() == 16);
  CHECK(batch.groups.empty());
  for (int d : batch.distances) {
    CHECK(d >= 3);   // the continuation (2) and the cue follow the occurrence
    CHECK(d <= 12);  // max_len
  }
}

TEST_CASE("induction: impossible options are config errors at the key") {
  CHECK_THROWS_WITH_AS(make("{type: induction, symbols: 8, max_len: 9}"),
                       doctest::Contains("task.max_len: expected at most task.symbols (8)"),
                       ConfigError);
  CHECK_THROWS_WITH_AS(make("{type: induction, min_len: 2, continuation: 2}"),
                       doctest::Contains("task.min_len: expected more than task.continuation (2)"),
                       ConfigError);
  CHECK_THROWS_WITH_AS(make("{type: induction, continuation: 0}"),
                       doctest::Contains("task.continuation: expected at least 1 token"), ConfigError);
  CHECK_THROWS_WITH_AS(make("{type: induction, min_len: 10, max_len: 9}"),
                       doctest::Contains("task.max_len: expected a length of at least task.min_len"),
                       ConfigError);
  InductionTaskOptions o;
  o.max_len = 20;
  CHECK_THROWS_WITH_AS(InductionTask(o, LossOn::answer),
                       doctest::Contains("max_len (20) must not exceed symbols (16)"),
                       std::invalid_argument);
}
