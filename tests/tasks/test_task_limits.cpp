// Tasks against hostile input (issue #12): sizes past tasks/limits.hpp (they went straight
// to allocation); data files that are not regular files, over the size, line and token
// limits, or not UTF-8; and a file task restored from a checkpoint's saved config, which
// must open no file at all (inotify watches the paths).
#include <doctest/doctest.h>

#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "strict_yaml/config_node.hpp"
#include "tasks/file.hpp"
#include "tasks/limits.hpp"
#include "tasks/registry.hpp"

using namespace qkv::tasks;
using qkv::ConfigError;
using qkv::ConfigNode;

namespace {

namespace fs = std::filesystem;

std::string scratch_path(const std::string& name) {
  const fs::path dir = fs::path(QKV_BINARY_DIR) / "test_file_task_limits";
  fs::create_directories(dir);
  fs::remove(dir / name);
  return (dir / name).string();
}

std::string write_file(const std::string& name, const std::string& content) {
  const std::string path = scratch_path(name);
  std::ofstream(path, std::ios::binary) << content;
  return path;
}

std::unique_ptr<Task> make_from(const ConfigNode& root, const std::string& state = "") {
  return make_task(root.section("task", "copy"), LossOn::answer, state);
}

std::unique_ptr<Task> make_file(const std::string& train, const std::string& state = "") {
  return make_from(ConfigNode::parse("task: {type: file, train_file: '" + train + "'}\n", "t.yaml"),
                   state);
}

void fails_with(const std::string& train, const std::string& text) {
  CHECK_THROWS_WITH_AS(make_file(train), doctest::Contains(text.c_str()), ConfigError);
}

// Counts the opens of the watched files while it lives (IN_OPEN: any process, any mode).
class OpenWatch {
 public:
  explicit OpenWatch(const std::vector<std::string>& paths)
      : fd_(inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) {
    REQUIRE(fd_ >= 0);
    for (const std::string& path : paths) REQUIRE(inotify_add_watch(fd_, path.c_str(), IN_OPEN) >= 0);
  }
  ~OpenWatch() { ::close(fd_); }
  std::size_t opens() const {
    std::size_t count = 0;
    alignas(inotify_event) char buffer[4096];
    for (ssize_t n; (n = ::read(fd_, buffer, sizeof buffer)) > 0;) {
      for (char* p = buffer; p < buffer + n;) {
        const auto* event = reinterpret_cast<const inotify_event*>(p);
        count += (event->mask & IN_OPEN) != 0;
        p += sizeof(inotify_event) + event->len;
      }
    }
    return count;
  }

 private:
  int fd_;
};

}  // namespace

TEST_CASE("tasks: sizes past the limits are errors at their key, before any allocation") {
  const auto fails = [](const std::string& section, const std::string& text) {
    CAPTURE(section);
    CHECK_THROWS_WITH_AS(make_from(ConfigNode::parse("task: " + section + "\n", "t.yaml")),
                         doctest::Contains(text.c_str()), ConfigError);
  };
  fails("{type: copy, symbols: 1000000000000}",
        "task.symbols: expected at most 100000 symbols (tasks/limits.hpp), found 1000000000000");
  fails("{type: reverse, max_len: 1000000000}", "task.max_len: expected at most 4096");
  fails("{type: recall, keys: 10000000000, pairs: 4}", "task.keys: expected at most 100000");
  fails("{type: recall, values: 10000000000}", "task.values: expected at most 100000");
  fails("{type: recall, keys: 100000, pairs: 5000}", "task.pairs: expected at most 4096");
  fails("{type: induction, symbols: 10000000000}", "task.symbols: expected at most 100000");
  fails("{type: induction, symbols: 100000, min_len: 5, max_len: 99999}",
        "task.max_len: expected at most 4096");
  fails("{type: agreement, max_attractors: 18446744073709551615}",
        "task.max_attractors: expected at most 4096");
  fails("{type: agreement, format: hard, max_depth: 1000000}", "task.max_depth: expected at most 4096");
}

TEST_CASE("tasks: text from a config is quoted printable in messages, and tokens are printable") {
  // Found by the fuzzers: a type or key holding a newline broke the one-line message.
  try {
    make_from(ConfigNode::parse("task: {type: \"co\\npy\"}\n", "t.yaml"));
    FAIL("no error");
  } catch (const ConfigError& error) {
    const std::string message = error.what();
    CHECK(message.find("unknown task type 'co\\npy'") != std::string::npos);
    CHECK(message.find('\n') == std::string::npos);
  }
  CHECK_THROWS_WITH_AS(
      make_from(ConfigNode::parse("task: {type: agreement, fillers: [\"a\\x01b\"]}\n", "t.yaml")),
      doctest::Contains("token 'a\\x01b' is empty or contains white space or control characters"),
      ConfigError);
}

TEST_CASE("file task: a data file must be a regular file") {
  SUBCASE("a FIFO is refused at once (it hung)") {
    const std::string fifo = scratch_path("data.fifo");
    REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    fails_with(fifo, "task.train_file: data file '" + fifo + "' is not a regular file (a FIFO)");
  }
  SUBCASE("/dev/zero is refused (memory grew to 2.5 GB)") {
    fails_with("/dev/zero", "data file '/dev/zero' is not a regular file (a character device)");
  }
  SUBCASE("a folder") {
    fails_with(fs::path(scratch_path("x")).parent_path().string(), "is not a regular file (a folder)");
  }
}

TEST_CASE("file task: data files over the limits are named errors") {
  SUBCASE("size") {
    const std::string big = write_file("big.tsv", "a\tb\n");
    fs::resize_file(big, kMaxDataFileBytes + 1);  // sparse: nothing is written
    fails_with(big, "data file '" + big + "' is 16777217 bytes; the limit is 16777216");
  }
  SUBCASE("a line") {
    const std::string long_line =
        write_file("long.tsv", "a\tb\n" + std::string(kMaxDataLineBytes, 'x') + "\ty\n");
    fails_with(long_line, "long.tsv:2: the line is 65538 bytes; the limit is 65536");
  }
  SUBCASE("lines") {
    const std::string many = write_file("many.tsv", "a\tb\n" + std::string(kMaxDataLines, '\n'));
    fails_with(many, "has more than 1000000 lines (the limit)");
  }
  SUBCASE("an example's positions (found by the data-file fuzzer: a state of it did not load)") {
    std::string prompt = "t", answer = "u";
    for (int i = 1; i < 3000; ++i) prompt += " t";
    for (int i = 1; i < 1200; ++i) answer += " u";
    fails_with(write_file("positions.tsv", "a\tb\n" + prompt + "\t" + answer + "\n"),
               "positions.tsv:2: the example needs 4201 positions; the limit is 4096");
  }
  SUBCASE("distinct tokens") {
    std::string text;
    for (std::size_t i = 0; i <= kMaxOwnTokens; i += 2)
      text += "t" + std::to_string(i) + "\tt" + std::to_string(i + 1) + "\n";
    fails_with(write_file("tokens.tsv", text),
               "has more than 100000 distinct tokens (the limit), at line 50001");
  }
  SUBCASE("invalid UTF-8 and NUL bytes") {
    fails_with(write_file("latin1.tsv", "a\tb\ncaf\xe9\tc\n"),
               "latin1.tsv:2: expected UTF-8 text without NUL bytes, found the byte 0xe9 at byte 3");
    fails_with(write_file("nul.tsv", std::string("a\tb\x00\n", 5)),
               "nul.tsv:1: expected UTF-8 text without NUL bytes, found a NUL byte at byte 3");
    // Found by the data-file fuzzer: the task refused it without naming the file.
    fails_with(write_file("escape.tsv", "a\tb\n\xc3\xa7\x1b\tc\n"),
               "escape.tsv:2: expected printable text, found the control byte \\x1b at byte 2");
  }
}

TEST_CASE("file task: a checkpoint's saved config opens no file, and evaluates its saved examples") {
  const std::string train = write_file("train.tsv", "a b\tb a\nb c\tc b\n");
  const std::string eval = write_file("eval.tsv", "c a\ta c\n");
  const std::string section =
      "task: {type: file, train_file: '" + train + "', eval_file: '" + eval + "'}\n";
  const std::string state = make_from(ConfigNode::parse(section, "mine.yaml"))->state();
  CHECK(state.find("format: 3") != std::string::npos);
  CHECK(state.find("eval: [\"c a\\ta c\"]") != std::string::npos);

  OpenWatch watch({train, eval});
  const ConfigNode saved = ConfigNode::parse_foreign(section, "run/last.safetensors (its config)");
  const auto restored = make_from(saved, state);
  CHECK(restored->token_names() == std::vector<std::string>{"PAD", "SEP", "EOS", "a", "b", "c"});
  const std::vector<Example> examples = restored->eval_examples(10, 0);
  REQUIRE(examples.size() == 1);
  CHECK(restored->decode(examples[0].prompt) == "c a");
  CHECK(restored->decode(examples[0].answer) == "a c");
  qkv::core::Rng rng(1);
  CHECK_THROWS_WITH_AS(restored->sample(1, rng), doctest::Contains("has no training data"),
                       std::runtime_error);
  CHECK(restored->state() == state);  // saved again as it was
  CHECK(watch.opens() == 0);

  SUBCASE("a state without saved examples (format 2) says to pass a data file") {
    const std::string old_state = "{format: 2, max_example_len: 4, max_answer_len: 2, "
                                  "vocabulary: [a, b, c]}";
    const auto old = make_from(saved, old_state);
    CHECK_THROWS_WITH_AS(old->eval_examples(10, 0), doctest::Contains("qkv eval --data FILE"),
                         std::runtime_error);
    CHECK(watch.opens() == 0);
  }
  SUBCASE("no state at all is refused, still without opening") {
    CHECK_THROWS_WITH_AS(make_from(saved, ""),
                         doctest::Contains("task.train_file: a saved config's file task needs "
                                           "its saved state"),
                         ConfigError);
    CHECK(watch.opens() == 0);
  }
  SUBCASE("a user's own config with the same state reads the user's files (a resumed run)") {
    const auto resumed = make_from(ConfigNode::parse(section, "mine.yaml"), state);
    CHECK(resumed->eval_examples(10, 0).size() == 1);
    CHECK(watch.opens() > 0);
  }
}

TEST_CASE("file task: a hostile saved state is a clean error") {
  const ConfigNode saved =
      ConfigNode::parse_foreign("task: {type: file, train_file: /etc/shadow}\n", "ckpt");
  const auto fails = [&](const std::string& state, const std::string& text) {
    CAPTURE(state.substr(0, 200));
    CHECK_THROWS_WITH_AS(make_from(saved, state), doctest::Contains(text.c_str()), ConfigError);
  };
  std::string bomb = "[&a0 [x, x, x, x, x, x, x, x, x, x]";
  for (int level = 1; level < 9; ++level) {
    const std::string below = "*a" + std::to_string(level - 1);
    bomb += ", &a" + std::to_string(level) + " [" + below;
    for (int i = 1; i < 10; ++i) bomb += ", " + below;
    bomb += "]";
  }
  fails("{format: 3, max_example_len: 4, max_answer_len: 2, vocabulary: " + bomb + "]}",
        "holds more than 100000 values");
  fails("{format: 3, max_example_len: 99999, max_answer_len: 2, vocabulary: [a]}",
        "max_example_len: expected a length below 4096");
  fails("{format: 3, max_example_len: 4, max_answer_len: 2, vocabulary: [a, b], "
        "eval: [\"a\\tq\"]}",
        "unknown token 'q'");
  fails("{format: 3, max_example_len: 2, max_answer_len: 1, vocabulary: [a, b], "
        "eval: [\"a b\\tb a\"]}",
        "longer than max_example_len");
  fails("{format: 3, max_example_len: 4, max_answer_len: 2, vocabulary: [a], extra: 1}",
        "unknown key 'extra'");
  fails("{format: 3, max_example_len: 4, max_answer_len: 2, vocabulary: [a, a]}",
        "listed more than once");
}
