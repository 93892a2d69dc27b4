// Task::answer_sources: each answer token's source positions hold what the answer needs
// (the token itself for copy, reverse, sort and recall; the subject for agreement), on the
// held-out examples of each built-in task.
#include <doctest/doctest.h>

#include <memory>
#include <string>
#include <vector>

#include "strict_yaml/config_node.hpp"
#include "tasks/registry.hpp"
#include "tasks/task.hpp"

using namespace qkv::tasks;

namespace {

std::unique_ptr<Task> make(const std::string& section) {
  const qkv::ConfigNode root = qkv::ConfigNode::parse("task: " + section + "\n", "test.yaml");
  return make_task(root.section("task", "copy"), LossOn::answer, "");
}

// Every answer token that has sources is the token found at each of them.
void check_sources_hold_answer(const Task& task) {
  for (const Example& e : task.eval_examples(64, 3)) {
    const auto sources = task.answer_sources(e.prompt);
    REQUIRE(!sources.empty());
    REQUIRE(sources.size() <= e.answer.size());
    for (std::size_t j = 0; j < sources.size(); ++j) {
      REQUIRE(!sources[j].empty());
      for (std::size_t s : sources[j]) {
        REQUIRE(s < e.prompt.size());
        CHECK(e.prompt[s] == e.answer[j]);
      }
    }
  }
}

}  // namespace

TEST_CASE("answer_sources: copy, reverse, sort and recall point at the answer's token") {
  for (const char* section : {"{type: copy}", "{type: reverse}", "{type: sort}",
                              "{type: recall, pairs: 4, queries: 2}"}) {
    CAPTURE(section);
    check_sources_hold_answer(*make(section));
  }
}

TEST_CASE("answer_sources: copy is position j, reverse L-1-j, sort every copy of the token") {
  const std::vector<Token> prompt = {4, 2, 4, 3};
  CHECK(make("{type: copy}")->answer_sources(prompt) ==
        std::vector<std::vector<std::size_t>>{{0}, {1}, {2}, {3}});
  CHECK(make("{type: reverse}")->answer_sources(prompt) ==
        std::vector<std::vector<std::size_t>>{{3}, {2}, {1}, {0}});
  CHECK(make("{type: sort}")->answer_sources(prompt) ==
        std::vector<std::vector<std::size_t>>{{1}, {3}, {0, 2}, {0, 2}});
}

TEST_CASE("answer_sources: agreement's source is the subject, the first noun") {
  const auto task = make("{type: agreement}");
  const std::vector<Token> prompt = task->encode("the old cats near the dog");
  CHECK(task->answer_sources(prompt) == std::vector<std::vector<std::size_t>>{{2}});
  for (const Example& e : task->eval_examples(64, 5)) {
    const auto sources = task->answer_sources(e.prompt);
    REQUIRE(sources.size() == 1);
    REQUIRE(sources[0].size() == 1);
    const std::string subject = task->token_name(e.prompt[sources[0][0]]);
    const bool plural = subject.back() == 's';  // the default nouns: cats, dogs, ...
    CHECK(task->token_name(e.answer[0]) == (plural ? "are" : "is"));
  }
}

TEST_CASE("answer_sources: recall's source is the queried key's value") {
  const auto task = make("{type: recall, keys: 4, values: 4, pairs: 3, queries: 2}");
  const std::vector<Token> prompt = task->encode("a 3 c 1 d 0 d a");
  CHECK(task->answer_sources(prompt) == std::vector<std::vector<std::size_t>>{{5}, {1}});
}

TEST_CASE("answer_sources: a task that does not say (the file task, a user's) names none") {
  struct Probe : Task {
    Probe() : Task("probe", {"a"}, 4, LossOn::answer) {}
    std::vector<Example> eval_examples(std::size_t, std::uint64_t) const override { return {}; }
    Example draw_training(qkv::core::Rng&) const override { return {}; }
  };
  CHECK(Probe().answer_sources({2, 2}).empty());
}
