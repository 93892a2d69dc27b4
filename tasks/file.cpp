// FileTask: parsing the data files, building and restoring the vocabulary, and its keys.
#include "tasks/file.hpp"

#include <algorithm>
#include <set>
#include <sstream>
#include <stdexcept>

#include <yaml-cpp/yaml.h>

#include "strict_yaml/text.hpp"
#include "tasks/limits.hpp"

namespace qkv::tasks {

namespace {

std::vector<std::string> split_words(const std::string& text) {
  std::istringstream stream(text);
  std::vector<std::string> words;
  std::string word;
  while (stream >> word) words.push_back(word);
  return words;
}

std::string join_words(const std::vector<std::string>& words) {
  std::string text;
  for (const std::string& word : words) text += (text.empty() ? "" : " ") + word;
  return text;
}

// 3: the eval examples are saved when they are small. 2: vocabulary and lengths only
// (still read). 1 saved max_seq_len, from before EOS.
constexpr int state_format = 3;
constexpr int oldest_state_format = 2;
// The eval examples a state holds at most (else it holds none): a checkpoint is written
// at every evaluation, and its metadata is read back whole.
constexpr std::size_t kMaxSavedEvalBytes = 1u << 20;
constexpr std::size_t kMaxSavedEvalExamples = 50000;

// One line of a data file; nullopt for a blank one. `where` ("file:3: ") starts errors.
std::optional<TextExample> parse_line(std::string line, const std::string& where) {
  if (!line.empty() && line.back() == '\r') line.pop_back();  // Windows line ends
  if (line.size() > kMaxDataLineBytes)
    throw std::invalid_argument(where + "the line is " + std::to_string(line.size()) +
                                " bytes; the limit is " + std::to_string(kMaxDataLineBytes));
  const std::string problem = text_problem(line);
  if (!problem.empty())
    throw std::invalid_argument(where + "expected UTF-8 text without NUL bytes, found " +
                                problem);
  for (std::size_t i = 0; i < line.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(line[i]);
    if (c != '\t' && (c < 0x20 || c == 0x7f))  // token names are printed
      throw std::invalid_argument(where + "expected printable text, found the control byte " +
                                  quote_for_message(line.substr(i, 1)) + " at byte " +
                                  std::to_string(i));
  }
  if (line.find_first_not_of(" \t") == std::string::npos) return std::nullopt;
  const std::size_t tab = line.find('\t');
  if (tab == std::string::npos) {
    throw std::invalid_argument(where + "expected 'prompt tokens<TAB>answer tokens', found "
                                        "no TAB in '" + quote_for_message(line) + "'");
  }
  if (line.find('\t', tab + 1) != std::string::npos) {
    throw std::invalid_argument(where + "expected one TAB between prompt and answer, found "
                                        "more than one");
  }
  TextExample example;
  example.prompt = split_words(line.substr(0, tab));
  example.answer = split_words(line.substr(tab + 1));
  if (example.prompt.empty()) throw std::invalid_argument(where + "the prompt is empty");
  if (example.answer.empty()) throw std::invalid_argument(where + "the answer is empty");
  for (const auto* side : {&example.prompt, &example.answer}) {
    for (const std::string& word : *side) {
      if (word == "PAD" || word == "SEP" || word == "EOS") {
        throw std::invalid_argument(where + "token '" + word +
                                    "' is reserved (the task's padding, separator and end)");
      }
    }
  }
  return example;
}

}  // namespace

std::vector<TextExample> read_text_examples(const std::string& path) {
  std::string text;
  try {
    text = read_text_file(path, kMaxDataFileBytes, "data file");
  } catch (const std::runtime_error& e) {
    throw std::invalid_argument(e.what());
  }
  std::vector<TextExample> examples;
  std::size_t number = 0;
  for (std::size_t start = 0; start < text.size();) {
    std::size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    if (++number > kMaxDataLines)
      throw std::invalid_argument("data file '" + quote_for_message(path, 300) +
                                  "' has more than " + std::to_string(kMaxDataLines) +
                                  " lines (the limit)");
    const std::string where = path + ":" + std::to_string(number) + ": ";
    if (std::optional<TextExample> example = parse_line(text.substr(start, end - start), where)) {
      example->line = number;
      examples.push_back(std::move(*example));
    }
    start = end + 1;
  }
  if (examples.empty()) throw std::invalid_argument("data file '" + path + "' has no example");
  return examples;
}

FileTask::Vocabulary FileTask::vocabulary_from(const FileTaskOptions& options,
                                               const std::string& state) {
  Vocabulary vocabulary;
  if (!state.empty()) {
    // Read as strictly as a config, with its limits: it comes from a checkpoint.
    try {
      const ConfigNode node = ConfigNode::parse_foreign(state, "the saved state");
      const int format = node.get<int>("format");
      if (format < oldest_state_format || format > state_format) {
        throw std::invalid_argument(
            "format " + std::to_string(format) + " is not supported (this qkv reads formats " +
            std::to_string(oldest_state_format) + " to " + std::to_string(state_format) +
            "; format 1 predates the EOS token)");
      }
      vocabulary.tokens = node.get<std::vector<std::string>>("vocabulary");
      node.require(vocabulary.tokens.size() <= kMaxOwnTokens, "vocabulary",
                   "at most " + std::to_string(kMaxOwnTokens) + " tokens");
      vocabulary.max_example_len = node.get<std::size_t>("max_example_len");
      node.require(vocabulary.max_example_len < kMaxPositions, "max_example_len",
                   "a length below " + std::to_string(kMaxPositions));
      vocabulary.max_answer_len = node.get<std::size_t>("max_answer_len");
      node.require(vocabulary.max_answer_len < vocabulary.max_example_len, "max_answer_len",
                   "a length below max_example_len");
      if (format >= 3 && node.has("eval")) {
        std::vector<TextExample> saved;
        for (const std::string& line : node.get<std::vector<std::string>>("eval")) {
          const std::string where = "saved eval example " + std::to_string(saved.size() + 1) + ": ";
          std::optional<TextExample> example = parse_line(line, where);
          if (!example) throw std::invalid_argument(where + "it is empty");
          saved.push_back(std::move(*example));
        }
        vocabulary.saved_eval = std::move(saved);
      }
      node.finish();
    } catch (const std::exception& e) {
      throw std::invalid_argument("task file: saved state is malformed (" +
                                  std::string(e.what()) + "): '" + quote_for_message(state) +
                                  "'");
    }
    return vocabulary;
  }
  if (options.train_file.empty()) throw std::invalid_argument("task file: train_file is not set");
  std::set<std::string> tokens;
  for (const std::string& path : {options.train_file, options.eval_file}) {
    if (path.empty()) continue;
    for (const TextExample& e : read_text_examples(path)) {
      if (path == options.train_file) {
        tokens.insert(e.prompt.begin(), e.prompt.end());
        tokens.insert(e.answer.begin(), e.answer.end());
        if (tokens.size() > kMaxOwnTokens)
          throw std::invalid_argument("data file '" + path + "' has more than " +
                                      std::to_string(kMaxOwnTokens) +
                                      " distinct tokens (the limit), at line " +
                                      std::to_string(e.line));
      }
      const std::size_t positions = e.prompt.size() + 1 + e.answer.size();
      if (positions > kMaxPositions)
        throw std::invalid_argument(path + ":" + std::to_string(e.line) + ": the example needs " +
                                    std::to_string(positions) + " positions; the limit is " +
                                    std::to_string(kMaxPositions) + " (tasks/limits.hpp)");
      vocabulary.max_example_len =
          std::max(vocabulary.max_example_len, e.prompt.size() + e.answer.size());
      vocabulary.max_answer_len = std::max(vocabulary.max_answer_len, e.answer.size());
    }
  }
  vocabulary.tokens.assign(tokens.begin(), tokens.end());
  return vocabulary;
}

FileTask::FileTask(const FileTaskOptions& options, LossOn loss_on, const std::string& state)
    : FileTask(options, loss_on, vocabulary_from(options, state)) {
  if (state.empty()) examples();  // a new run checks its data files now
}

FileTask::FileTask(const FileTaskOptions& options, LossOn loss_on, const Vocabulary& vocabulary)
    : Task("file", vocabulary.tokens, vocabulary.max_example_len, vocabulary.max_answer_len,
           loss_on),
      options_(options) {
  if (!vocabulary.saved_eval) return;
  std::vector<Example> saved;
  for (const TextExample& text : *vocabulary.saved_eval) {
    Example example;
    example.prompt = encode(join_words(text.prompt));
    example.answer = encode(join_words(text.answer));
    if (example.prompt.size() + 1 + example.answer.size() > max_seq_len())
      throw std::invalid_argument("task file: saved state is malformed (a saved eval example "
                                  "is longer than max_example_len)");
    saved.push_back(std::move(example));
  }
  saved_eval_ = std::move(saved);
}

const FileTask::Examples& FileTask::examples() const {
  if (!has_files())
    throw std::runtime_error(
        "the file task of a saved config has no training data (a checkpoint's data paths are "
        "never opened): train from your own config");
  if (!examples_) {
    Examples loaded;
    loaded.train = read_examples(options_.train_file);
    loaded.eval = options_.eval_file.empty() ? loaded.train : read_examples(options_.eval_file);
    examples_ = std::move(loaded);
  }
  return *examples_;
}

Example FileTask::draw_training(core::Rng& rng) const {
  const std::vector<Example>& train = examples().train;
  return train[rng.below(train.size())];
}

std::vector<Example> FileTask::eval_examples(std::size_t count, std::uint64_t) const {
  if (!has_files() && !saved_eval_)
    throw std::runtime_error(
        "this checkpoint's file task holds no eval examples (they are saved only when they fit "
        "in " + std::to_string(kMaxSavedEvalBytes >> 20) + " MiB and " +
        std::to_string(kMaxSavedEvalExamples) +
        " examples, and not before state format 3), and a checkpoint's data paths are never "
        "opened: evaluate a file of your own (qkv eval --data FILE)");
  const std::vector<Example>& eval = has_files() ? examples().eval : *saved_eval_;
  return {eval.begin(), eval.begin() + static_cast<std::ptrdiff_t>(std::min(count, eval.size()))};
}

std::string FileTask::state() const {
  // The eval examples go with the state when they are small, so that a checkpoint
  // evaluates without its data files: the ones read, else the ones restored (the state
  // never reads a file itself).
  const std::vector<Example>* eval = examples_ ? &examples_->eval
                                               : saved_eval_ ? &*saved_eval_ : nullptr;
  std::vector<std::string> lines;
  std::size_t bytes = 0;
  if (eval != nullptr && eval->size() <= kMaxSavedEvalExamples) {
    for (const Example& e : *eval) {
      lines.push_back(decode(e.prompt) + "\t" + decode(e.answer));
      bytes += lines.back().size();
      if (bytes > kMaxSavedEvalBytes) break;
    }
    if (bytes > kMaxSavedEvalBytes) lines.clear();
  }
  YAML::Emitter out;
  out << YAML::Flow << YAML::BeginMap;
  out << YAML::Key << "format" << YAML::Value << state_format;
  out << YAML::Key << "max_example_len" << YAML::Value << max_seq_len() - 1;
  out << YAML::Key << "max_answer_len" << YAML::Value << max_answer_len();
  out << YAML::Key << "vocabulary" << YAML::Value << YAML::BeginSeq;
  for (std::size_t id = first_own_id; id < vocab_size(); ++id) out << token_names()[id];
  out << YAML::EndSeq;
  if (!lines.empty()) {
    out << YAML::Key << "eval" << YAML::Value << YAML::BeginSeq;
    for (const std::string& line : lines) out << YAML::DoubleQuoted << line;
    out << YAML::EndSeq;
  }
  out << YAML::EndMap;
  return out.c_str();
}

std::unique_ptr<Task> make_file_task(const qkv::ConfigNode& options, LossOn loss_on,
                                     const std::string& state) {
  FileTaskOptions file;
  if (options.is_foreign()) {
    // A checkpoint's saved config: its paths are someone else's, kept as text (written
    // back as given) and never opened; the saved state holds what the task needs.
    options.has("train_file");
    options.has("eval_file");
    if (state.empty())
      options.fail("train_file", "a saved config's file task needs its saved state (the "
                                 "vocabulary), and this checkpoint holds none");
  } else {
    file.train_file = options.get_path("train_file");
    if (options.has("eval_file")) file.eval_file = options.get_path("eval_file");
  }
  try {
    return std::make_unique<FileTask>(file, loss_on, state);
  } catch (const std::invalid_argument& e) {
    options.fail("train_file", e.what());
  }
}

}  // namespace qkv::tasks
