// FileTask: the user's own examples, read from text files.
//
// Format: one example per line, prompt tokens, a TAB, answer tokens; tokens are separated
// by spaces; blank lines are skipped. The vocabulary is every token of the training file,
// sorted; eval-file tokens must be in it. The task reads the longest example and the
// longest answer of both files, so that max_seq_len() and max_answer_len() hold them.
// state() saves the vocabulary and those lengths for the checkpoint, and a task restored
// from it reads the files with that exact vocabulary, only when it first needs examples
// (so `qkv eval --data` works after the training files have moved).
//
//   # configs/data/plural.tsv
//   c a t\tc a t s
//
//   task: {type: file, train_file: data/plural.tsv, eval_file: data/plural_eval.tsv}
//
//   FileTask task({"data/train.tsv", "data/eval.tsv"}, LossOn::answer, /*state=*/"");
//   std::string saved = task.state();
//   // "{format: 2, max_example_len: 9, max_answer_len: 5, vocabulary: [...]}"
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
  std::string train_file;
  std::string eval_file;  // optional
};

// One line of a data file, as token strings.
struct TextExample {
  std::vector<std::string> prompt;
  std::vector<std::string> answer;
  std::size_t line = 0;  // 1-based
};

// Reads a data file. Errors (std::invalid_argument) name the file and line: no TAB, more
// than one TAB, an empty prompt or answer; an unreadable file or one with no example.
std::vector<TextExample> read_text_examples(const std::string& path);

class FileTask : public Task {
 public:
  // Reads options.train_file (and eval_file if set). With a non-empty `state` (from
  // state()), the vocabulary and lengths come from it instead, and the files are read
  // when examples are first asked for.
  FileTask(const FileTaskOptions& options, LossOn loss_on, const std::string& state);

  // The first `count` examples of the eval file (all of them if count is larger), or of
  // the training file when there is no eval file; the same set for every seed.
  std::vector<Example> eval_examples(std::size_t count, std::uint64_t seed) const override;

  std::string state() const override;

 protected:
  Example draw_training(core::Rng& rng) const override;  // a uniformly random line

 private:
  struct Vocabulary {
    std::vector<std::string> tokens;  // the data's tokens (no PAD, SEP, EOS)
    std::size_t max_example_len = 0;  // the longest prompt + answer
    std::size_t max_answer_len = 0;
  };
  FileTask(const FileTaskOptions& options, LossOn loss_on, const Vocabulary& vocabulary);
  static Vocabulary vocabulary_from(const FileTaskOptions& options, const std::string& state);

  struct Examples {
    std::vector<Example> train, eval;
  };
  const Examples& examples() const;  // read on first use

  FileTaskOptions options_;
  mutable std::optional<Examples> examples_;
};

// The `file` type (registry.hpp): train_file (required) and eval_file, relative paths
// resolved against the folder of the config file that gave them. `state` restores a
// checkpoint's vocabulary. A data file's error is a ConfigError at train_file that quotes
// the data file's own line.
std::unique_ptr<Task> make_file_task(const qkv::ConfigNode& options, LossOn loss_on,
                                     const std::string& state);

}  // namespace qkv::tasks
