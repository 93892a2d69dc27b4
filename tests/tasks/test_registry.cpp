// The task registry: a user's task registered with one line, unknown types, names
// registered once, and a written task section (defaults included) making the same task.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "strict_yaml/config_node.hpp"
#include "strict_yaml/config_writer.hpp"
#include "tasks/generated.hpp"
#include "tasks/registry.hpp"

using namespace qkv::tasks;
using qkv::ConfigError;
using qkv::ConfigNode;
using qkv::ConfigWriter;
using qkv::TypedSection;
using qkv::core::Rng;

namespace {

// A user's task: four random letters; the answer is the first one, `repeat` times.
class FirstTokenTask : public GeneratedTask {
 public:
  FirstTokenTask(std::size_t symbols, std::size_t repeat, LossOn loss_on)
      : GeneratedTask("first_token", letter_names(symbols, "s"), 4 + repeat, loss_on),
        symbols_(symbols),
        repeat_(repeat) {}

 protected:
  Example draw(Rng& rng) const override {
    Example example;
    for (int i = 0; i < 4; ++i) example.prompt.push_back(own_token(rng.below(symbols_)));
    example.answer.assign(repeat_, example.prompt[0]);
    return example;
  }

 private:
  std::size_t symbols_, repeat_;
};

std::unique_ptr<Task> make_first_token_task(const ConfigNode& options, LossOn loss_on,
                                            const std::string&) {
  const auto symbols = options.get<std::size_t>("symbols", 8);
  options.require(symbols >= 2, "symbols", "at least 2 symbols");
  const auto repeat = options.get<std::size_t>("repeat", 2);
  return std::make_unique<FirstTokenTask>(symbols, repeat, loss_on);
}

// The one line a user's task needs.
const RegisterTask registration("first_token", make_first_token_task);

// `task: <section>` (YAML flow style) as a config holds it.
TypedSection task_section(const std::string& section) {
  return ConfigNode::parse("task: " + section + "\n", "test.yaml").section("task", "copy");
}

std::unique_ptr<Task> make(const std::string& section, const std::string& state = "") {
  return make_task(task_section(section), LossOn::answer, state);
}

TaskRegistry builtins() {
  TaskRegistry registry;
  register_builtin_tasks(registry);
  return registry;
}

// The resolved section as a config file writes it.
std::string written(const TypedSection& section) {
  ConfigWriter out;
  out.set_section("task", section);
  return out.str();
}

void check_same_task(const Task& a, const Task& b) {
  CHECK(a.name() == b.name());
  CHECK(a.token_names() == b.token_names());
  CHECK(a.max_seq_len() == b.max_seq_len());
  const std::vector<Example> first = a.eval_examples(8, 3);
  const std::vector<Example> again = b.eval_examples(8, 3);
  REQUIRE(first.size() == again.size());
  for (std::size_t i = 0; i < first.size(); ++i) {
    CHECK(first[i].prompt == again[i].prompt);
    CHECK(first[i].answer == again[i].answer);
    CHECK(first[i].group == again[i].group);
  }
  Rng rng_a(9), rng_b(9);
  CHECK(a.sample(4, rng_a).inputs.values == b.sample(4, rng_b).inputs.values);
}

}  // namespace

TEST_CASE("task registry: a task registered with one line is made by name") {
  CHECK(task_registry().contains("first_token"));
  CHECK_FALSE(builtins().contains("first_token"));
  const auto task = make("{type: first_token, repeat: 3}");
  CHECK(task->name() == "first_token");
  CHECK(task->vocab_size() == 3 + 8);  // PAD, SEP, EOS, eight letters
  CHECK(task->max_seq_len() == 8);     // four letters, SEP, the answer (4 + 3 given, + SEP)
  CHECK(task->max_answer_len() == 6);  // not said: what a one-token prompt would leave
  Rng rng(4);
  const Batch batch = task->sample(16, rng);
  const std::size_t T = batch.seq_len();
  for (std::size_t b = 0; b < 16; ++b) {
    const Token first = batch.inputs.values[b * T];
    CHECK(batch.inputs.values[b * T + 4] == Task::sep_id);
    // Targets from SEP on: the answer, the first token three times.
    for (std::size_t k = 0; k < 3; ++k) CHECK(batch.targets.values[b * T + 4 + k] == first);
    CHECK(batch.targets.values[b * T + 7] == Task::eos_id);
  }
  // Its own keys are checked like a built-in task's.
  CHECK_THROWS_WITH_AS(make("{type: first_token, repet: 3}"),
                       doctest::Contains("unknown key 'task.repet'; did you mean 'task.repeat'?"),
                       ConfigError);
  CHECK_THROWS_WITH_AS(make("{type: first_token, symbols: 1}"),
                       doctest::Contains("task.symbols: expected at least 2 symbols, found 1"),
                       ConfigError);
  CHECK_THROWS_WITH_AS(make("{type: first_token}", "{format: 1}"),
                       doctest::Contains("task first_token takes no saved state"), ConfigError);
}

TEST_CASE("task registry: an unknown type names the known types and the closest") {
  CHECK_THROWS_WITH_AS(make_task(task_section("{type: cpoy}"), LossOn::answer, "", builtins()),
                       "test.yaml:1:14: task.type: unknown task type 'cpoy' (known types: "
                       "agreement, copy, file, induction, recall, reverse, sort); did you mean 'copy'?",
                       ConfigError);
  CHECK_THROWS_WITH_AS(make_task(task_section("zzzzzz"), LossOn::answer, "", builtins()),
                       doctest::Contains("unknown task type 'zzzzzz' (known types: agreement, "
                                         "copy, file, induction, recall, reverse, sort)"),
                       ConfigError);
  TaskRegistry own;
  own.add("first_token", make_first_token_task);
  CHECK_THROWS_WITH_AS(make_task(task_section("{type: copy}"), LossOn::answer, "", own),
                       doctest::Contains("unknown task type 'copy' (known types: first_token)"),
                       ConfigError);
  CHECK(make_task(task_section("{type: first_token}"), LossOn::answer, "", own)->name() ==
        "first_token");
}

TEST_CASE("task registry: each name is registered once, with a factory") {
  TaskRegistry registry = builtins();
  CHECK(registry.types() ==
        std::vector<std::string>{"agreement", "copy", "file", "induction", "recall", "reverse",
                                 "sort"});
  CHECK_THROWS_WITH_AS(registry.add("copy", make_first_token_task),
                       "task registry: task type 'copy' is already registered (each name can be "
                       "registered once)",
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(registry.add("", make_first_token_task),
                       "task registry: the type name is empty", std::invalid_argument);
  CHECK_THROWS_WITH_AS(registry.add("nothing", TaskFactory()),
                       "task registry: the factory for 'nothing' is empty", std::invalid_argument);
  registry.add("nothing", [](const ConfigNode&, LossOn, const std::string&) {
    return std::unique_ptr<Task>();
  });
  CHECK(registry.contains("nothing"));
  CHECK_THROWS_WITH_AS(make_task(task_section("{type: nothing}"), LossOn::answer, "", registry),
                       doctest::Contains("task.type: the factory for task type 'nothing' "
                                         "returned no task"),
                       ConfigError);
}

TEST_CASE("task sections: written with their defaults, they make the same task again") {
  const std::string dir = (std::filesystem::path(QKV_BINARY_DIR) / "test_tasks").string();
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/round_train.tsv") << "c a t\tc a t s\nd o g\td o g s\n";
  std::ofstream(dir + "/round_eval.tsv") << "c o g\tc o g s\n";
  for (const std::string& section : {
           std::string("{type: copy}"),
           std::string("reverse"),
           std::string("{type: sort, symbols: 30, min_len: 2, max_len: 5}"),
           std::string("{type: agreement, singular_nouns: [fox, owl], plural_nouns: [foxes, owls],"
                       " max_attractors: 2}"),
           std::string("{type: recall, keys: 10, pairs: 3, queries: 2}"),
           std::string("{type: first_token, symbols: 5}"),
           "{type: file, train_file: '" + dir + "/round_train.tsv', eval_file: '" + dir +
               "/round_eval.tsv'}",
       }) {
    CAPTURE(section);
    const TypedSection first = task_section(section);
    const auto task = make_task(first, LossOn::answer);
    const std::string text = written(first);
    CAPTURE(text);
    const TypedSection again = ConfigNode::parse(text, "written.yaml").section("task", "copy");
    CHECK(again.type == first.type);
    check_same_task(*task, *make_task(again, LossOn::answer));
    CHECK(written(again) == text);
  }
  const auto text_of = [](const std::string& section) {
    const TypedSection s = task_section(section);
    make_task(s, LossOn::answer);
    return written(s);
  };
  // The defaults the readers used are written too.
  CHECK(text_of("{type: copy}") ==
        "task:\n  type: copy\n  symbols: 16\n  min_len: 8\n  max_len: 16\n");
  CHECK(text_of("{type: recall, pairs: 2}") ==
        "task:\n  type: recall\n  keys: 16\n  values: 16\n  pairs: 2\n  queries: 1\n");
  const std::string agreement = text_of("{type: agreement}");
  CHECK(agreement.find("singular_nouns: [cat, dog, key, boy, girl, tree]") != std::string::npos);
  CHECK(agreement.find("fillers: [the, near, with, old, big, of]") != std::string::npos);
  CHECK(agreement.find("max_leading: 2") != std::string::npos);
  CHECK(text_of("{type: first_token}").find("repeat: 2") != std::string::npos);
}

TEST_CASE("task sections: the file task's data paths are relative to the config file") {
  const std::filesystem::path dir =
      std::filesystem::path(QKV_BINARY_DIR) / "test_tasks" / "relative";
  std::filesystem::create_directories(dir / "data");
  std::ofstream(dir / "data" / "train.tsv") << "a b\tb a\n";
  std::ofstream(dir / "config.yaml") << "task: {type: file, train_file: data/train.tsv}\n";
  const ConfigNode root = qkv::load_config_tree((dir / "config.yaml").string());
  const TypedSection section = root.section("task", "copy");
  const auto task = make_task(section, LossOn::answer);
  CHECK(task->decode(task->eval_examples(1, 0)[0].answer) == "b a");
  const std::string absolute =
      std::filesystem::absolute(dir / "data" / "train.tsv").lexically_normal().string();
  CHECK(written(section).find("train_file: " + absolute) != std::string::npos);
}
