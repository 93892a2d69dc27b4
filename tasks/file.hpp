// FileTask: the user's own examples, read from text files.
//
// Format: one example per line, prompt tokens, a TAB, answer tokens; tokens are separated
// by spaces; blank lines are skipped. The vocabulary is every token of the training file,
// sorted; eval-file tokens must be in it. The task reads the longest example and the
// longest answer of both files, so that max_seq_len() and max_answer_len() hold them.
// A data file must be a regular file (a FIFO or a device is refused without waiting on
// it) of at most 16 MiB, 1000000 lines and 64 KiB per line, in UTF-8 without NUL bytes,
// with at most 100000 distinct tokens (tasks/limits.hpp).
//
// state() saves the vocabulary, those lengths and, when they are small (at most 1 MiB of
// text and 50000 examples), the eval examples, for the checkpoint. A task restored from a
// state keeps that exact vocabulary. Given files (a resumed run's own config), it reads
// them only when it first needs examples, so `qkv eval --data` works after the training
// files have moved. Given none (make_file_task on a checkpoint's saved config, whose
// paths are never opened: a checkpoint is someone else's file), it opens nothing: its eval
// examples are the saved ones, and without saved ones (too many, or a checkpoint older
// than state format 3) evaluation needs the user's own file (`qkv eval --data FILE`).
//
//   # configs/data/plural.tsv
//   c a t\tc a t s
//
//   task: {type: file, train_file: data/plural.tsv, eval_file: data/plural_eval.tsv}
//
//   FileTask task({"data/train.tsv", "data/eval.tsv"}, LossOn::answer, /*state=*/"");
//   std::string saved = task.state();
//   // "{format: 3, max_example_len: 9, max_answer_len: 5, vocabulary: [...], eval: [...]}"
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "strict_yaml/config_node.hpp"
#include "tasks/task.hpp"

namespace qkv::tasks {

// Examples read from text files (one per line: prompt tokens TAB answer tokens, tokens
// separated by spaces; blank lines are skipped).
struct FileTaskOptions {
  std::string train_file;  // "" only for a task restored from a state that opens no file
  std::string eval_file;   // optional
};

// One line of a data file, as token strings.
struct TextExample {
  std::vector<std::string> prompt;
  std::vector<std::string> answer;
  std::size_t line = 0;  // 1-based
};

// Reads a data file. Errors (std::invalid_argument) name the file and line: no TAB, more
// than one TAB, an empty prompt or answer, a reserved token, a line over the limits or not
// UTF-8; an unreadable file, one that is not a regular file, over the limits, or with no
// example.
std::vector<TextExample> read_text_examples(const std::string& path);

class FileTask : public Task {
 public:
  // Reads options.train_file (and eval_file if set). With a non-empty `state` (from
  // state()), the vocabulary, lengths and saved eval examples come from it instead, and
  // the files, if any, are read when examples are first asked for.
  FileTask(const FileTaskOptions& options, LossOn loss_on, const std::string& state);

  // The first `count` examples of the eval file (all of them if count is larger), or of
  // the training file when there is no eval file; the same set for every seed. Without
  // files: the saved eval examples, or a std::runtime_error saying to pass a data file.
  std::vector<Example> eval_examples(std::size_t count, std::uint64_t seed) const override;

  std::string state() const override;

 protected:
  Example draw_training(core::Rng& rng) const override;  // a uniformly random line

 private:
  struct Vocabulary {
    std::vector<std::string> tokens;  // the data's tokens (no PAD, SEP, EOS)
    std::size_t max_example_len = 0;  // the longest prompt + answer
    std::size_t max_answer_len = 0;
    std::optional<std::vector<TextExample>> saved_eval;  // from a state that holds them
  };
  FileTask(const FileTaskOptions& options, LossOn loss_on, const Vocabulary& vocabulary);
  static Vocabulary vocabulary_from(const FileTaskOptions& options, const std::string& state);

  struct Examples {
    std::vector<Example> train, eval;
  };
  const Examples& examples() const;  // read on first use
  bool has_files() const { return !options_.train_file.empty(); }

  FileTaskOptions options_;
  mutable std::optional<Examples> examples_;
  std::optional<std::vector<Example>> saved_eval_;
};

// The `file` type (registry.hpp): train_file (required) and eval_file, relative paths
// resolved against the folder of the config file that gave them. `state` restores a
// checkpoint's vocabulary. A data file's error is a ConfigError at train_file that quotes
// the data file's own line. In a foreign config (ConfigNode::parse_foreign: a checkpoint's
// saved one) the paths are kept as text and never opened, and a state is required.
std::unique_ptr<Task> make_file_task(const qkv::ConfigNode& options, LossOn loss_on,
                                     const std::string& state);

}  // namespace qkv::tasks
