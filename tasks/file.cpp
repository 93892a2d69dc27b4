// FileTask: parsing the data files, building and restoring the vocabulary, and its keys.
#include "tasks/file.hpp"

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>
#include <stdexcept>

#include <yaml-cpp/yaml.h>

namespace qkv::tasks {

namespace {

std::vector<std::string> split_words(const std::string& text) {
  std::istringstream stream(text);
  std::vector<std::string> words;
  std::string word;
  while (stream >> word) words.push_back(word);
  return words;
}

// 2: the lengths of examples with an EOS (format 1 saved max_seq_len, from before EOS).
constexpr int state_format = 2;

}  // namespace

std::vector<TextExample> read_text_examples(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::invalid_argument("cannot read data file '" + path + "'");
  std::vector<TextExample> examples;
  std::string line;
  for (std::size_t number = 1; std::getline(in, line); ++number) {
    if (!line.empty() && line.back() == '\r') line.pop_back();  // Windows line ends
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    const std::string where = path + ":" + std::to_string(number) + ": ";
    const std::size_t tab = line.find('\t');
    if (tab == std::string::npos) {
      throw std::invalid_argument(where + "expected 'prompt tokens<TAB>answer tokens', found "
                                          "no TAB in '" + line + "'");
    }
    if (line.find('\t', tab + 1) != std::string::npos) {
      throw std::invalid_argument(where + "expected one TAB between prompt and answer, found "
                                          "more than one");
    }
    TextExample example;
    example.prompt = split_words(line.substr(0, tab));
    example.answer = split_words(line.substr(tab + 1));
    example.line = number;
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
    examples.push_back(std::move(example));
  }
  if (examples.empty()) throw std::invalid_argument("data file '" + path + "' has no example");
  return examples;
}

FileTask::Vocabulary FileTask::vocabulary_from(const FileTaskOptions& options,
                                               const std::string& state) {
  Vocabulary vocabulary;
  if (!state.empty()) {
    try {
      const YAML::Node node = YAML::Load(state);
      if (node["format"].as<int>() != state_format) {
        throw std::invalid_argument("format " + node["format"].as<std::string>() +
                                    " is not supported (this qkv reads format " +
                                    std::to_string(state_format) +
                                    "; format 1 predates the EOS token)");
      }
      vocabulary.tokens = node["vocabulary"].as<std::vector<std::string>>();
      vocabulary.max_example_len = node["max_example_len"].as<std::size_t>();
      vocabulary.max_answer_len = node["max_answer_len"].as<std::size_t>();
    } catch (const std::exception& e) {
      throw std::invalid_argument("task file: saved state is malformed (" +
                                  std::string(e.what()) + "): '" + state + "'");
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
      }
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
  if (options.train_file.empty()) throw std::invalid_argument("task file: train_file is not set");
}

const FileTask::Examples& FileTask::examples() const {
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
  const std::vector<Example>& eval = examples().eval;
  return {eval.begin(), eval.begin() + static_cast<std::ptrdiff_t>(std::min(count, eval.size()))};
}

std::string FileTask::state() const {
  YAML::Emitter out;
  out << YAML::Flow << YAML::BeginMap;
  out << YAML::Key << "format" << YAML::Value << state_format;
  out << YAML::Key << "max_example_len" << YAML::Value << max_seq_len() - 1;
  out << YAML::Key << "max_answer_len" << YAML::Value << max_answer_len();
  out << YAML::Key << "vocabulary" << YAML::Value << YAML::BeginSeq;
  for (std::size_t id = first_own_id; id < vocab_size(); ++id) out << token_names()[id];
  out << YAML::EndSeq << YAML::EndMap;
  return out.c_str();
}

std::unique_ptr<Task> make_file_task(const qkv::ConfigNode& options, LossOn loss_on,
                                     const std::string& state) {
  FileTaskOptions file;
  file.train_file = options.get_path("train_file");
  if (options.has("eval_file")) file.eval_file = options.get_path("eval_file");
  try {
    return std::make_unique<FileTask>(file, loss_on, state);
  } catch (const std::invalid_argument& e) {
    options.fail("train_file", e.what());
  }
}

}  // namespace qkv::tasks
