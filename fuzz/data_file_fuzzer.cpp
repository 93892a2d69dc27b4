// libFuzzer target for the data-file reader (tasks/file.hpp) and the file task's saved
// state, the two texts a file task reads from other people: a data file (the training and
// eval files, and `qkv eval --data`) and the state a checkpoint carries. An input that
// starts with '{' is a saved state, restored through a checkpoint's saved config (which
// opens no file); any other input is a data file.
//
// A data file must either be refused with an error (std::invalid_argument from the
// reader, a ConfigError from the task) that names the file and is one line of at most
// 2000 bytes, or read; then a file task trains on it (one batch), Task::read_examples
// reads the examples it evaluates on (the training lines, without an eval file), and its
// state restores, without the file, the same vocabulary, lengths, state and saved eval
// examples. A saved state must either be refused with a ConfigError of one short line at
// task.train_file, or restore a task whose state restores the same task again. Anything
// else is a finding: a crash, a sanitizer report, another exception type (uncaught, so it
// aborts), a long message, a round trip that changes something.
//
// Built two ways by fuzz/CMakeLists.txt: with clang's libFuzzer (qkv_data_file_fuzzer),
// and with replay_main.cpp to replay fuzz/corpus/data_file/ in CTest. Each data file
// input is written to one scratch file (in /dev/shm when there is one), removed at exit.
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/random.hpp"
#include "strict_yaml/config_node.hpp"
#include "tasks/file.hpp"
#include "tasks/registry.hpp"

namespace {

constexpr std::size_t kMaxMessageBytes = 2000;
constexpr std::size_t kAll = std::numeric_limits<std::size_t>::max();  // eval_examples' count

[[noreturn]] void finding(const std::string& what, const std::string& detail) {
  std::fprintf(stderr, "data_file_fuzzer: %s: %s\n", what.c_str(), detail.substr(0, 2000).c_str());
  std::abort();
}

void check_message(const std::exception& error, const std::string& must_name) {
  const std::string message = error.what();
  if (message.size() > kMaxMessageBytes)
    finding("an error message of " + std::to_string(message.size()) + " bytes", message);
  if (message.find('\n') != std::string::npos)
    finding("an error message of several lines", message);
  if (message.find(must_name) == std::string::npos)
    finding("an error that does not name '" + must_name + "'", message);
}

// The file each data-file input is written to, one per process (so that runs side by side
// do not share it).
class ScratchFile {
 public:
  ScratchFile() {
    const std::filesystem::path folder = std::filesystem::is_directory("/dev/shm")
                                             ? "/dev/shm"
                                             : std::filesystem::temp_directory_path();
    path_ = (folder / ("qkv_data_file_fuzzer." + std::to_string(::getpid()) + ".tsv")).string();
  }
  ~ScratchFile() { std::remove(path_.c_str()); }
  ScratchFile(const ScratchFile&) = delete;
  ScratchFile& operator=(const ScratchFile&) = delete;

  const std::string& write(const std::string& bytes) const {
    std::ofstream(path_, std::ios::binary | std::ios::trunc) << bytes;
    return path_;
  }

 private:
  std::string path_;
};

std::unique_ptr<qkv::tasks::Task> make(const qkv::ConfigNode& root, const std::string& state) {
  return qkv::tasks::make_task(root.section("task", "file"), qkv::tasks::LossOn::answer, state);
}

qkv::ConfigNode saved_config() {
  return qkv::ConfigNode::parse_foreign("task: {type: file, train_file: /nonexistent.tsv}\n",
                                        "saved config");
}

void same_task(const qkv::tasks::Task& a, const qkv::tasks::Task& b, const std::string& what) {
  if (a.token_names() != b.token_names() || a.max_seq_len() != b.max_seq_len() ||
      a.max_answer_len() != b.max_answer_len() || a.state() != b.state())
    finding(what, a.state() + "\n" + b.state());
}

// The same prompts and answers (a saved example has no line: its file is not opened).
void same_examples(const std::vector<qkv::tasks::Example>& a,
                   const std::vector<qkv::tasks::Example>& b, const std::string& what) {
  const bool same = std::equal(a.begin(), a.end(), b.begin(), b.end(), [](auto& x, auto& y) {
    return x.prompt == y.prompt && x.answer == y.answer;
  });
  if (!same) finding(what, std::to_string(a.size()) + " and " + std::to_string(b.size()));
}

// The eval examples of a task restored without files: the saved ones, or an error saying
// to pass a data file when the state holds none.
std::optional<std::vector<qkv::tasks::Example>> saved_eval(const qkv::tasks::Task& task,
                                                           std::size_t count) {
  try {
    return task.eval_examples(count, 0);
  } catch (const std::runtime_error& error) {
    check_message(error, "--data");
    return std::nullopt;
  }
}

void fuzz_data_file(const std::string& bytes) {
  static const ScratchFile scratch;
  const std::string& path = scratch.write(bytes);
  std::vector<qkv::tasks::TextExample> texts;
  try {
    texts = qkv::tasks::read_text_examples(path);
  } catch (const std::invalid_argument& error) {
    check_message(error, path);
    return;
  }
  const qkv::ConfigNode mine = qkv::ConfigNode::parse(
      "task: {type: file, train_file: '" + path + "'}\n", "mine.yaml");
  std::unique_ptr<qkv::tasks::Task> task;
  try {
    task = make(mine, "");
  } catch (const qkv::ConfigError& error) {  // over a limit of the task's (tokens, positions)
    check_message(error, path);
    return;
  }
  qkv::core::Rng rng(1);
  task->sample(4, rng);
  // Without an eval file, the task evaluates on the training file's lines, in order.
  const std::vector<qkv::tasks::Example> lines = task->eval_examples(texts.size(), 0);
  same_examples(task->read_examples(path), lines, "read_examples read other examples");
  const auto restored = make(saved_config(), task->state());
  same_task(*task, *restored, "a state that restores another task");
  if (const auto saved = saved_eval(*restored, texts.size()))
    same_examples(*saved, lines, "a state that restores other eval examples");
}

void fuzz_state(const std::string& state) {
  std::unique_ptr<qkv::tasks::Task> task;
  try {
    task = make(saved_config(), state);
  } catch (const qkv::ConfigError& error) {
    check_message(error, "task.train_file");
    return;
  }
  const auto again = make(saved_config(), task->state());
  same_task(*task, *again, "a restored state that restores another task");
  const auto saved = saved_eval(*task, kAll);
  const auto saved_again = saved_eval(*again, kAll);
  if (saved.has_value() != saved_again.has_value())
    finding("a restored state that lost or gained its eval examples", state);
  if (saved) same_examples(*saved, *saved_again, "a restored state with other eval examples");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  if (!bytes.empty() && bytes[0] == '{') {
    fuzz_state(bytes);
  } else {
    fuzz_data_file(bytes);
  }
  return 0;
}
