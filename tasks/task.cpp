// Task: token names, batch packing, and reading examples from text.
#include "tasks/task.hpp"

#include <algorithm>
#include <cctype>
#include <sstream>
#include <stdexcept>

#include "strict_yaml/text.hpp"
#include "tasks/file.hpp"

namespace qkv::tasks {

Task::Task(std::string name, const std::vector<std::string>& tokens,
           std::size_t max_example_len, LossOn loss_on)
    : Task(std::move(name), tokens, max_example_len,
           max_example_len > 0 ? max_example_len - 1 : 0, loss_on) {}

Task::Task(std::string name, const std::vector<std::string>& tokens,
           std::size_t max_example_len, std::size_t max_answer_len, LossOn loss_on)
    : name_(std::move(name)),
      max_seq_len_(max_example_len + 1),
      max_answer_len_(max_answer_len),
      loss_on_(loss_on) {
  token_names_ = {"PAD", "SEP", "EOS"};
  token_names_.insert(token_names_.end(), tokens.begin(), tokens.end());
  for (std::size_t id = 0; id < token_names_.size(); ++id) {
    const std::string& token = token_names_[id];
    // A name is printed in messages, tables and pictures: no white space, no control byte.
    if (token.empty() ||
        std::any_of(token.begin(), token.end(), [](char c) {
          return std::isspace(static_cast<unsigned char>(c)) || std::iscntrl(static_cast<unsigned char>(c));
        })) {
      throw std::invalid_argument("task " + name_ + ": token '" + quote_for_message(token) +
                                  "' is empty or contains white space or control characters");
    }
    if (id >= static_cast<std::size_t>(first_own_id) &&
        (token == "PAD" || token == "SEP" || token == "EOS")) {
      throw std::invalid_argument("task " + name_ + ": token name '" + quote_for_message(token) +
                                  "' is reserved (PAD, SEP and EOS are every task's own)");
    }
    if (!ids_.emplace(token, static_cast<Token>(id)).second) {
      throw std::invalid_argument("task " + name_ + ": token '" + quote_for_message(token) +
                                  "' is listed more than once");
    }
  }
}

const std::string& Task::token_name(Token id) const {
  if (id < 0 || static_cast<std::size_t>(id) >= token_names_.size()) {
    throw std::out_of_range("task " + name_ + ": token id " + std::to_string(id) +
                            " is outside the vocabulary of " +
                            std::to_string(token_names_.size()));
  }
  return token_names_[static_cast<std::size_t>(id)];
}

std::string Task::decode(const std::vector<Token>& ids) const {
  std::string text;
  for (std::size_t i = 0; i < ids.size(); ++i) {
    if (i) text += ' ';
    text += token_name(ids[i]);
  }
  return text;
}

std::vector<Token> Task::encode(const std::string& text) const {
  std::istringstream words(text);
  std::vector<Token> ids;
  std::string word;
  while (words >> word) {
    const auto it = ids_.find(word);
    if (it == ids_.end()) {
      throw std::invalid_argument("task " + name_ + ": unknown token '" + quote_for_message(word) +
                                  "'");
    }
    ids.push_back(it->second);
  }
  return ids;
}

Batch Task::sample(std::size_t batch_size, core::Rng& rng) const {
  std::vector<Example> examples;
  examples.reserve(batch_size);
  for (std::size_t b = 0; b < batch_size; ++b) examples.push_back(draw_training(rng));
  return make_batch(examples);
}

Batch Task::make_batch(const std::vector<Example>& examples) const {
  const std::size_t B = examples.size();
  if (B == 0) throw std::invalid_argument("task " + name_ + ": a batch needs an example");
  std::size_t T = 0;
  for (const Example& e : examples) {
    if (e.prompt.empty() || e.answer.empty()) {
      throw std::invalid_argument("task " + name_ + ": an example needs a prompt and an answer");
    }
    T = std::max(T, e.prompt.size() + 1 + e.answer.size());  // inputs: prompt SEP answer
  }
  if (T > max_seq_len_) {
    throw std::invalid_argument("task " + name_ + ": an example needs " + std::to_string(T) +
                                " positions; the task holds at most " +
                                std::to_string(max_seq_len_));
  }
  Batch batch;
  batch.inputs.shape = {B, T};
  batch.targets.shape = {B, T};
  batch.inputs.values.assign(B * T, pad_id);
  batch.targets.values.assign(B * T, pad_id);
  batch.mask.assign(B * T, 0);
  batch.answer_mask.assign(B * T, 0);
  const bool grouped = !group_name().empty();
  const bool with_distance = std::any_of(examples.begin(), examples.end(),
                                         [](const Example& e) { return e.distance >= 0; });
  std::vector<Token> sequence;
  for (std::size_t b = 0; b < B; ++b) {
    const Example& e = examples[b];
    sequence = e.prompt;
    sequence.push_back(sep_id);
    sequence.insert(sequence.end(), e.answer.begin(), e.answer.end());
    sequence.push_back(eos_id);
    for (Token id : sequence) token_name(id);  // range check
    // Position t reads sequence[t] and predicts sequence[t + 1]; the targets from index
    // prompt.size() on (right after SEP is read) are the answer and its EOS.
    for (std::size_t t = 0; t + 1 < sequence.size(); ++t) {
      const std::size_t i = b * T + t;
      batch.inputs.values[i] = sequence[t];
      batch.targets.values[i] = sequence[t + 1];
      const bool answer = t >= e.prompt.size();
      batch.answer_mask[i] = answer;
      batch.mask[i] = loss_on_ == LossOn::all || answer;
    }
    if (grouped) batch.groups.push_back(e.group);
    if (with_distance) batch.distances.push_back(e.distance);
  }
  return batch;
}

std::vector<Example> Task::read_examples(const std::string& path) const {
  std::vector<Example> examples;
  for (const TextExample& text : read_text_examples(path)) {
    Example example;
    const auto encode_side = [&](const std::vector<std::string>& words, std::vector<Token>& out) {
      for (const std::string& word : words) {
        const auto it = ids_.find(word);
        if (it == ids_.end() || it->second < first_own_id) {
          throw std::invalid_argument(path + ":" + std::to_string(text.line) +
                                      ": unknown token '" + quote_for_message(word) + "' (not in the " + name_ +
                                      " task's vocabulary)");
        }
        out.push_back(it->second);
      }
    };
    encode_side(text.prompt, example.prompt);
    encode_side(text.answer, example.answer);
    example.line = text.line;
    const std::size_t T = example.prompt.size() + 1 + example.answer.size();
    if (T > max_seq_len_) {
      throw std::invalid_argument(path + ":" + std::to_string(text.line) + ": the example needs " +
                                  std::to_string(T) + " positions; the " + name_ +
                                  " task holds at most " + std::to_string(max_seq_len_));
    }
    examples.push_back(std::move(example));
  }
  return examples;
}

}  // namespace qkv::tasks
