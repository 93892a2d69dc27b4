// Task generators: batch shapes and masks, answers correct by construction, determinism by
// seed, the held-out evaluation split, and the file task's parsing and errors. Tasks are
// made as a config makes them, from a task section through the registry.
#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "strict_yaml/config_node.hpp"
#include "tasks/agreement.hpp"
#include "tasks/copy.hpp"
#include "tasks/file.hpp"
#include "tasks/generated.hpp"
#include "tasks/recall.hpp"
#include "tasks/registry.hpp"
#include "tasks/task.hpp"

using namespace qkv::tasks;
using qkv::ConfigError;
using qkv::ConfigNode;
using qkv::core::Rng;

namespace {

// One batch row split back into its prompt and the answer tokens the targets hold (the
// EOS that ends them checked and left out).
struct Row {
  std::vector<Token> prompt;
  std::vector<Token> answer;
  std::size_t length = 0;  // real (non-padded) positions
};

Row row_of(const Batch& batch, std::size_t b) {
  const std::size_t T = batch.seq_len();
  Row row;
  bool after_sep = false;
  for (std::size_t t = 0; t < T; ++t) {
    const std::size_t i = b * T + t;
    const Token input = batch.inputs.values[i];
    if (input == Task::pad_id) {
      // Right padding: every later position is padding that never counts.
      CHECK(batch.targets.values[i] == Task::pad_id);
      CHECK(batch.mask[i] == 0);
      CHECK(batch.answer_mask[i] == 0);
      continue;
    }
    CHECK(row.length == t);  // no real token after padding
    CHECK(input != Task::eos_id);  // EOS is only ever a target
    ++row.length;
    if (input == Task::sep_id) after_sep = true;
    if (!after_sep) row.prompt.push_back(input);
    // The target at position t is the answer token when t >= prompt length.
    CHECK(batch.answer_mask[i] == (t >= row.prompt.size() ? 1 : 0));
    if (batch.answer_mask[i]) row.answer.push_back(batch.targets.values[i]);
  }
  // The last answer position predicts EOS, and no other does.
  REQUIRE(!row.answer.empty());
  CHECK(row.answer.back() == Task::eos_id);
  row.answer.pop_back();
  CHECK(std::count(row.answer.begin(), row.answer.end(), Task::eos_id) == 0);
  return row;
}

// The task a config's `task: <section>` describes (`section` in YAML flow style).
std::unique_ptr<Task> make(const std::string& section, LossOn loss_on = LossOn::answer,
                           const std::string& state = "") {
  const ConfigNode root = ConfigNode::parse("task: " + section + "\n", "test.yaml");
  return make_task(root.section("task", "copy"), loss_on, state);
}

std::string sequence(const std::string& type, std::size_t symbols, std::size_t min_len,
                     std::size_t max_len) {
  return "{type: " + type + ", symbols: " + std::to_string(symbols) +
         ", min_len: " + std::to_string(min_len) + ", max_len: " + std::to_string(max_len) + "}";
}

// A file task's section; the paths are quoted (they are absolute, from temp_file).
std::string file_section(const std::string& train_file, const std::string& eval_file = "") {
  std::string section = "{type: file, train_file: '" + train_file + "'";
  if (!eval_file.empty()) section += ", eval_file: '" + eval_file + "'";
  return section + "}";
}

std::string temp_path(const std::string& name) {
  const std::filesystem::path dir = std::filesystem::path(QKV_BINARY_DIR) / "test_tasks";
  std::filesystem::create_directories(dir);
  return (dir / name).string();
}

std::string temp_file(const std::string& name, const std::string& content) {
  const std::string path = temp_path(name);
  std::ofstream(path) << content;
  return path;
}

}  // namespace

TEST_CASE("tasks: copy, reverse and sort batches hold the right answers") {
  for (const std::string type : {"copy", "reverse", "sort"}) {
    CAPTURE(type);
    const auto task = make(sequence(type, 16, 3, 9));
    CHECK(task->name() == type);
    CHECK(task->vocab_size() == 19);
    CHECK(task->max_seq_len() == 19);  // 9 prompt tokens, SEP, 9 answer tokens
    CHECK(task->max_answer_len() == 9);
    CHECK(task->token_name(0) == "PAD");
    CHECK(task->token_name(1) == "SEP");
    CHECK(task->token_name(2) == "EOS");
    CHECK(task->token_name(3) == "a");
    CHECK(task->token_name(18) == "p");
    Rng rng(7);
    const Batch batch = task->sample(64, rng);
    REQUIRE(batch.inputs.shape == qkv::core::Shape{64, batch.seq_len()});
    CHECK(batch.targets.shape == batch.inputs.shape);
    CHECK(batch.mask.size() == 64 * batch.seq_len());
    CHECK(batch.answer_mask.size() == 64 * batch.seq_len());
    CHECK(batch.groups.empty());
    CHECK(batch.mask == batch.answer_mask);  // loss on answers only
    std::size_t longest = 0;
    std::set<std::size_t> lengths;
    for (std::size_t b = 0; b < 64; ++b) {
      const Row row = row_of(batch, b);
      REQUIRE(row.prompt.size() >= 3);
      REQUIRE(row.prompt.size() <= 9);
      lengths.insert(row.prompt.size());
      CHECK(row.length == 2 * row.prompt.size() + 1);  // prompt SEP answer
      longest = std::max(longest, row.length);
      for (Token id : row.prompt) CHECK((id >= 3 && id < 19));
      std::vector<Token> expected = row.prompt;
      if (type == "reverse") std::reverse(expected.begin(), expected.end());
      if (type == "sort") std::sort(expected.begin(), expected.end());
      CHECK(row.answer == expected);
      // Inputs after SEP are the answer itself (teacher forcing with the true prefix).
      for (std::size_t k = 0; k + 1 < row.answer.size(); ++k) {
        CHECK(batch.inputs.values[b * batch.seq_len() + row.prompt.size() + 1 + k] ==
              row.answer[k]);
      }
    }
    CHECK(batch.seq_len() == longest);  // padded to the batch's longest row only
    CHECK(lengths.size() > 3);          // lengths vary across the range
  }
}

TEST_CASE("tasks: loss_on all counts every real position") {
  const auto task = make(sequence("copy", 8, 2, 6), LossOn::all);
  Rng rng(3);
  const Batch batch = task->sample(16, rng);
  for (std::size_t i = 0; i < batch.mask.size(); ++i) {
    CHECK(batch.mask[i] == (batch.inputs.values[i] != Task::pad_id ? 1 : 0));
  }
  for (std::size_t b = 0; b < 16; ++b) {
    const Row row = row_of(batch, b);
    CHECK(row.answer == row.prompt);  // the answer mask still marks the answer only
  }
}

TEST_CASE("tasks: the same seed gives the same batches, another seed others") {
  for (const std::string type : {"copy", "reverse", "sort", "agreement", "recall"}) {
    CAPTURE(type);
    const auto task = make("{type: " + type + "}");
    Rng a(42), b(42), c(43);
    const Batch first = task->sample(8, a);
    const Batch again = task->sample(8, b);
    const Batch other = task->sample(8, c);
    CHECK(first.inputs.values == again.inputs.values);
    CHECK(first.targets.values == again.targets.values);
    CHECK(first.mask == again.mask);
    CHECK(first.inputs.values != other.inputs.values);
    CHECK(task->sample(8, a).inputs.values != first.inputs.values);  // the stream moves on
  }
}

TEST_CASE("tasks: evaluation prompts are held out from training") {
  // A small space (4 symbols, length 3: 64 prompts) where random training draws would
  // cover every prompt: the split must still keep the two sides apart.
  const auto task = make(sequence("copy", 4, 3, 3));
  std::set<std::vector<Token>> train_prompts, eval_prompts;
  Rng rng(1);
  for (int i = 0; i < 50; ++i) {
    const Batch batch = task->sample(32, rng);
    for (std::size_t b = 0; b < batch.batch_size(); ++b) {
      const std::vector<Token> prompt = row_of(batch, b).prompt;
      CHECK_FALSE(GeneratedTask::is_eval_prompt(prompt));
      train_prompts.insert(prompt);
    }
  }
  const std::vector<Example> eval = task->eval_examples(200, 1);
  REQUIRE(eval.size() == 200);
  for (const Example& e : eval) {
    CHECK(GeneratedTask::is_eval_prompt(e.prompt));
    CHECK(train_prompts.count(e.prompt) == 0);
    eval_prompts.insert(e.prompt);
  }
  CHECK(!eval_prompts.empty());
  CHECK(train_prompts.size() + eval_prompts.size() <= 64);
  CHECK(train_prompts.size() > 48);  // training still sees most of the space

  SUBCASE("the evaluation set is fixed by the seed") {
    const auto big = make(sequence("copy", 16, 8, 16));
    const std::vector<Example> first = big->eval_examples(20, 5);
    const std::vector<Example> again = big->eval_examples(20, 5);
    const std::vector<Example> other = big->eval_examples(20, 6);
    for (std::size_t i = 0; i < 20; ++i) CHECK(first[i].prompt == again[i].prompt);
    CHECK(first[0].prompt != other[0].prompt);
    // Not the training stream of the same seed either.
    Rng train_rng(5);
    const Batch batch = big->sample(20, train_rng);
    CHECK(row_of(batch, 0).prompt != first[0].prompt);
  }
}

TEST_CASE("tasks: agreement answers with the verb of the first noun") {
  const AgreementTaskOptions o;  // the defaults, which the section leaves as they are
  const auto task = make("{type: agreement}");
  CHECK(task->group_name() == "attractors");
  CHECK(task->vocab_size() == 3 + o.singular_nouns.size() + o.plural_nouns.size() + 2 +
                                  o.fillers.size());
  // The longest prompt, SEP, the verb.
  CHECK(task->max_seq_len() == o.max_leading + 1 + o.max_attractors + o.max_fillers + 1 + 1);
  CHECK(task->max_answer_len() == 1);
  const std::set<std::string> singular(o.singular_nouns.begin(), o.singular_nouns.end());
  const std::set<std::string> plural(o.plural_nouns.begin(), o.plural_nouns.end());
  const std::set<std::string> fillers(o.fillers.begin(), o.fillers.end());
  Rng rng(11);
  const Batch batch = task->sample(256, rng);
  REQUIRE(batch.groups.size() == 256);
  std::set<int> groups_seen;
  std::size_t plural_subjects = 0, against_nearest = 0;
  for (std::size_t b = 0; b < 256; ++b) {
    const Row row = row_of(batch, b);
    REQUIRE(row.answer.size() == 1);
    std::size_t leading = 0;
    while (fillers.count(task->token_name(row.prompt[leading]))) ++leading;
    CHECK(leading <= o.max_leading);
    const std::string subject = task->token_name(row.prompt[leading]);
    REQUIRE((singular.count(subject) || plural.count(subject)));
    const bool is_plural = plural.count(subject) > 0;
    plural_subjects += is_plural;
    CHECK(task->token_name(row.answer[0]) == (is_plural ? o.plural_verb : o.singular_verb));
    int nouns_after = 0;
    std::string nearest = subject;
    for (std::size_t t = leading + 1; t < row.prompt.size(); ++t) {
      const std::string word = task->token_name(row.prompt[t]);
      if (singular.count(word) || plural.count(word)) {
        ++nouns_after;
        nearest = word;
      } else {
        CHECK(fillers.count(word) == 1);
      }
    }
    CHECK(batch.groups[b] == nouns_after);
    CHECK(nouns_after <= static_cast<int>(o.max_attractors));
    groups_seen.insert(nouns_after);
    against_nearest += (plural.count(nearest) > 0) != is_plural;
  }
  CHECK(groups_seen.size() == o.max_attractors + 1);
  CHECK(plural_subjects > 64);
  CHECK(plural_subjects < 192);
  CHECK(against_nearest > 20);  // the nearest noun often disagrees: attractors matter
  const std::vector<Example> eval = task->eval_examples(10, 0);
  for (const Example& e : eval) CHECK(e.group >= 0);
}

TEST_CASE("tasks: recall answers each queried key's value") {
  const auto task = make("{type: recall, keys: 12, values: 8, pairs: 5, queries: 2}");
  CHECK(task->vocab_size() == 3 + 12 + 8);
  CHECK(task->max_seq_len() == 2 * 5 + 2 + 1 + 2);  // pairs, queries, SEP, answers
  CHECK(task->max_answer_len() == 2);
  CHECK(task->token_name(3) == "a");
  CHECK(task->token_name(15) == "0");
  Rng rng(5);
  const Batch batch = task->sample(64, rng);
  CHECK(batch.seq_len() == task->max_seq_len());
  for (std::size_t b = 0; b < 64; ++b) {
    const Row row = row_of(batch, b);
    REQUIRE(row.prompt.size() == 12);
    REQUIRE(row.answer.size() == 2);
    std::set<Token> keys;
    for (std::size_t p = 0; p < 5; ++p) {
      CHECK(row.prompt[2 * p] < 15);       // a key
      CHECK(row.prompt[2 * p + 1] >= 15);  // a value
      keys.insert(row.prompt[2 * p]);
    }
    CHECK(keys.size() == 5);  // distinct keys
    CHECK(row.prompt[10] != row.prompt[11]);
    for (std::size_t q = 0; q < 2; ++q) {
      const Token key = row.prompt[10 + q];
      Token value = -1;
      for (std::size_t p = 0; p < 5; ++p) {
        if (row.prompt[2 * p] == key) value = row.prompt[2 * p + 1];
      }
      CHECK(row.answer[q] == value);
    }
  }
}

TEST_CASE("tasks: token names, encode and decode") {
  const auto task = make(sequence("copy", 30, 2, 4));
  CHECK(task->token_name(3) == "s0");
  CHECK(task->token_name(32) == "s29");
  CHECK(task->encode("s3 SEP s29 EOS") == std::vector<Token>{6, 1, 32, 2});
  CHECK(task->decode({6, 1, 32, 2, 0}) == "s3 SEP s29 EOS PAD");
  CHECK_THROWS_WITH_AS(task->encode("s3 zz"), doctest::Contains("unknown token 'zz'"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(task->token_name(33), doctest::Contains("token id 33 is outside"),
                       std::out_of_range);
}

TEST_CASE("tasks: bad options are errors") {
  // In a config: at the key, with the file and line.
  const auto fails = [](const std::string& section, const std::string& message) {
    CAPTURE(section);
    CHECK_THROWS_WITH_AS(make(section), doctest::Contains(message.c_str()), ConfigError);
  };
  fails(sequence("copy", 16, 9, 8),
        "test.yaml:1:54: task.max_len: expected a length of at least task.min_len (9), found 8");
  fails(sequence("reverse", 0, 1, 8), "task.symbols: expected at least 1 symbol, found 0");
  fails(sequence("sort", 4, 0, 8), "task.min_len: expected a length of at least 1, found 0");
  fails("{type: cpy}", "task.type: unknown task type 'cpy'");
  fails(sequence("copy", 1, 1, 1), "task.type: task copy: no evaluation prompt in 4096 draws; "
                                   "the prompt space is too small");
  fails("{type: recall, keys: 4, values: 4, pairs: 5}",
        "task.pairs: expected 1..task.keys (4) pairs: a prompt's keys differ, found 5");
  fails("{type: recall, pairs: 2, queries: 3}",
        "task.queries: expected 1..task.pairs (2) queries, found 3");
  fails("{type: recall, values: 0}", "task.values: expected at least 1 value symbol, found 0");
  fails("{type: agreement, fillers: [the, cat]}",
        "task.fillers: the word 'cat' is listed twice (also in task.singular_nouns)");
  fails("{type: agreement, plural_nouns: []}", "task.plural_nouns: expected at least one noun");
  fails("{type: agreement, singular_verb: SEP}",
        "task.singular_verb: expected words without spaces, other than PAD, SEP and EOS, "
        "found SEP");
  fails("{type: agreement, fillers: [the, EOS]}",
        "task.fillers: expected words without spaces, other than PAD, SEP and EOS");
  fails("{type: agreement, fillers: [], max_leading: 0}",
        "task.fillers: expected at least one filler word while max_fillers or max_leading is "
        "positive");
  fails("{type: copy, min_lne: 3}", "unknown key 'task.min_lne'; did you mean 'task.min_len'?");
  fails("{type: recall, min_len: 3}", "unknown key 'task.min_len'");
  CHECK_THROWS_WITH_AS(make(sequence("copy", 8, 2, 4), LossOn::answer, "{x: 1}"),
                       doctest::Contains("task.type: task copy takes no saved state: it saves "
                                         "none (got '{x: 1}')"),
                       ConfigError);
  // In code: the tasks' constructors check their options too.
  CHECK_THROWS_WITH_AS(CopyTask(SequenceTaskOptions{16, 9, 8}, LossOn::answer),
                       "task copy: min_len (9) must not exceed max_len (8)",
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(RecallTask(RecallTaskOptions{4, 4, 5, 1}, LossOn::answer),
                       doctest::Contains("pairs (5) must not exceed keys (4)"),
                       std::invalid_argument);
  AgreementTaskOptions agreement;
  agreement.fillers.push_back("cat");
  CHECK_THROWS_WITH_AS(AgreementTask(agreement, LossOn::answer),
                       "task agreement: token 'cat' is listed more than once",
                       std::invalid_argument);
}

TEST_CASE("tasks: the file task reads examples and builds its vocabulary") {
  const std::string train = temp_file("train.tsv",
                                      "c a t\tc a t s\n"
                                      "\n"
                                      "d o g\td o g s\r\n"
                                      "o x\to x e n\n");
  const std::string section = file_section(train, temp_file("eval.tsv", "c o d\tc o d s\n"));
  const auto task = make(section);
  CHECK(task->token_names() ==
        std::vector<std::string>{"PAD", "SEP", "EOS", "a", "c", "d", "e", "g", "n", "o", "s", "t",
                                 "x"});
  CHECK(task->max_seq_len() == 8);     // c a t, SEP, c a t s
  CHECK(task->max_answer_len() == 4);  // o x e n
  const std::vector<Example> eval = task->eval_examples(100, 0);
  REQUIRE(eval.size() == 1);
  CHECK(task->decode(eval[0].prompt) == "c o d");
  CHECK(task->decode(eval[0].answer) == "c o d s");
  CHECK(eval[0].line == 1);
  CHECK(task->eval_examples(0, 0).empty());

  Rng rng(2);
  const Batch batch = task->sample(32, rng);
  std::set<std::string> seen;
  for (std::size_t b = 0; b < 32; ++b) {
    const Row row = row_of(batch, b);
    seen.insert(task->decode(row.prompt) + " -> " + task->decode(row.answer));
  }
  CHECK(seen == std::set<std::string>{"c a t -> c a t s", "d o g -> d o g s", "o x -> o x e n"});

  SUBCASE("state restores the vocabulary") {
    const std::string state = task->state();
    const auto restored = make(section, LossOn::answer, state);
    CHECK(restored->token_names() == task->token_names());
    CHECK(restored->max_seq_len() == task->max_seq_len());
    CHECK(restored->max_answer_len() == task->max_answer_len());
    // A restored task keeps the saved vocabulary even when the data gained a token; it
    // reads the data when it first needs examples.
    const auto stale = make(file_section(temp_file("train2.tsv", "c a t\tc a t z\n")),
                            LossOn::answer, state);
    CHECK_THROWS_WITH_AS(stale->eval_examples(1, 0),
                         doctest::Contains("train2.tsv:1: unknown token 'z'"),
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(make(section, LossOn::answer, "not a state"),
                         doctest::Contains("task.train_file: task file: saved state is malformed"),
                         ConfigError);
    // A state from before EOS (format 1) is named as such.
    CHECK_THROWS_WITH_AS(make(section, LossOn::answer,
                              "{format: 1, max_seq_len: 7, vocabulary: [a, c]}"),
                         doctest::Contains("format 1 is not supported (this qkv reads formats "
                                           "2 to 3; format 1 predates the EOS token)"),
                         ConfigError);
  }
  SUBCASE("without an eval file, evaluation uses the training examples") {
    const auto no_eval = make(file_section(train));
    CHECK(no_eval->eval_examples(2, 0).size() == 2);
    CHECK(no_eval->decode(no_eval->eval_examples(1, 0)[0].prompt) == "c a t");
  }
  SUBCASE("any task reads hand-written examples by token name") {
    const auto copy = make(sequence("copy", 16, 2, 4));
    const auto examples =
        copy->read_examples(temp_file("copy.tsv", "a b c\ta b c\n\nb\tb\n"));
    REQUIRE(examples.size() == 2);
    CHECK(examples[0].prompt == std::vector<Token>{3, 4, 5});
    CHECK(examples[0].line == 1);
    CHECK(examples[1].line == 3);  // blank lines count
    CHECK_THROWS_WITH_AS(copy->read_examples(temp_file("long.tsv", "a b c d e\ta b c d e\n")),
                         doctest::Contains("long.tsv:1: the example needs 11 positions; the "
                                           "copy task holds at most 9"),
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(copy->read_examples(temp_file("eos.tsv", "a b\ta b EOS\n")),
                         doctest::Contains("eos.tsv:1: token 'EOS' is reserved"),
                         std::invalid_argument);
  }
}

TEST_CASE("tasks: malformed data lines name the file and line") {
  const auto fails_with = [&](const std::string& content, const std::string& message) {
    CHECK_THROWS_WITH_AS(make(file_section(temp_file("bad.tsv", content))),
                         doctest::Contains(message.c_str()), ConfigError);
  };
  fails_with("a b\ta\nc d\n", "bad.tsv:2: expected 'prompt tokens<TAB>answer tokens', found no "
                              "TAB in 'c d'");
  fails_with("a\tb\tc\n", "bad.tsv:1: expected one TAB between prompt and answer");
  fails_with("a\tb\n \tb\n", "bad.tsv:2: the prompt is empty");
  fails_with("a\t  \n", "bad.tsv:1: the answer is empty");
  fails_with("a SEP\tb\n", "bad.tsv:1: token 'SEP' is reserved");
  fails_with("a\tb EOS\n", "bad.tsv:1: token 'EOS' is reserved");
  fails_with("\n\n", "data file '" + temp_path("bad.tsv") + "' has no example");
  CHECK_THROWS_WITH_AS(make(file_section(temp_file("good.tsv", "a\tb\n"),
                                         temp_file("bad_eval.tsv", "a\tb\nq\tb\n"))),
                       doctest::Contains("bad_eval.tsv:2: unknown token 'q'"), ConfigError);
  CHECK_THROWS_WITH_AS(make(file_section("/nonexistent/data.tsv")),
                       doctest::Contains("task.train_file: cannot read data file "
                                         "'/nonexistent/data.tsv'"),
                       ConfigError);
  CHECK_THROWS_WITH_AS(make("{type: file}"),
                       doctest::Contains("task.train_file: required key is missing"),
                       ConfigError);
}
