// Generation one token at a time, and the prompts it reads (see generate.hpp).
#include "train/generate.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <sstream>
#include <stdexcept>

#include "core/ops.hpp"

namespace qkv::train {

namespace {

using tasks::Task;
using tasks::Token;

bool is_own_token(const Task& task, Token id) {
  return id >= Task::first_own_id && static_cast<std::size_t>(id) < task.vocab_size();
}

std::string own_tokens(const Task& task) {
  std::string names;
  for (std::size_t id = Task::first_own_id; id < task.vocab_size(); ++id)
    names += (names.empty() ? "" : " ") + task.token_names()[id];
  return names;
}

// The last position's logits of a (1, T, V) forward, as doubles.
std::vector<double> last_row(const core::Tensor& logits) {
  const std::size_t T = logits.size(1);
  const std::size_t V = logits.size(2);
  std::vector<double> row(V);
  for (std::size_t v = 0; v < V; ++v) {
    const std::size_t i = (T - 1) * V + v;
    row[v] = logits.dtype() == core::DType::f32 ? double(logits.data<float>()[i])
                                                : logits.data<double>()[i];
  }
  return row;
}

void check(const layers::Transformer& model, const Task& task, const std::vector<Token>& prompt,
           const GenerateOptions& options) {
  const std::string who = "generate: ";
  if (model.vocab() != task.vocab_size())
    throw std::invalid_argument(who + "the model has " + std::to_string(model.vocab()) +
                                " output tokens; the " + task.name() + " task has " +
                                std::to_string(task.vocab_size()));
  if (!(options.temperature >= 0))
    throw std::invalid_argument(who + "the temperature must be 0 (greedy) or positive, got " +
                                std::to_string(options.temperature));
  if (prompt.empty()) throw std::invalid_argument(who + "the prompt is empty");
  for (std::size_t i = 0; i < prompt.size(); ++i) {
    if (!is_own_token(task, prompt[i]))
      throw std::invalid_argument(who + "prompt token " + std::to_string(i) + " has id " +
                                  std::to_string(prompt[i]) + ", not one of the " +
                                  task.name() + " task's own tokens (ids " +
                                  std::to_string(Task::first_own_id) + ".." +
                                  std::to_string(task.vocab_size() - 1) + ")");
  }
  if (prompt.size() + 1 > model.max_len())
    throw std::invalid_argument(who + "the prompt has " + std::to_string(prompt.size()) +
                                " tokens; the model reads at most " +
                                std::to_string(model.max_len()) +
                                " positions, SEP included, so at most " +
                                std::to_string(model.max_len() - 1) + " prompt tokens");
}

}  // namespace

std::vector<Token> parse_prompt(const Task& task, const std::string& text) {
  std::istringstream words(text);
  std::vector<Token> prompt;
  for (std::string word; words >> word;) {
    const std::vector<std::string>& names = task.token_names();
    const auto it = std::find(names.begin(), names.end(), word);
    const Token id = static_cast<Token>(it - names.begin());
    if (it == names.end() || !is_own_token(task, id)) {
      const std::string why = it == names.end()
                                  ? "unknown token '" + word + "'"
                                  : "'" + word + "' is not a prompt token (qkv adds SEP after "
                                                 "the prompt, and EOS ends the answer)";
      throw std::invalid_argument("prompt: " + why + "; the " + task.name() +
                                  " task's tokens are: " + own_tokens(task));
    }
    prompt.push_back(id);
  }
  if (prompt.empty())
    throw std::invalid_argument("prompt: it is empty; the " + task.name() +
                                " task's tokens are: " + own_tokens(task));
  return prompt;
}

Token choose_token(const std::vector<double>& logits, const GenerateOptions& options,
                   core::Rng& rng) {
  const auto argmax = [&] {
    return static_cast<Token>(std::max_element(logits.begin(), logits.end()) - logits.begin());
  };
  if (options.temperature == 0 || options.top_k == 1) return argmax();
  // The candidates, most likely first (equal logits: lower id first).
  std::vector<std::size_t> order(logits.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t a, std::size_t b) { return logits[a] > logits[b]; });
  if (options.top_k > 0 && options.top_k < order.size()) order.resize(options.top_k);
  const double top = logits[order.front()];
  std::vector<double> weights;
  double total = 0;
  for (std::size_t id : order) {
    weights.push_back(std::exp((logits[id] - top) / options.temperature));
    total += weights.back();
  }
  const double draw = rng.uniform() * total;
  double cumulative = 0;
  for (std::size_t i = 0; i < order.size(); ++i) {
    cumulative += weights[i];
    if (draw < cumulative) return static_cast<Token>(order[i]);
  }
  return static_cast<Token>(order.back());  // draw == total by round-off
}

Generation generate(layers::Transformer& model, const Task& task,
                    const std::vector<Token>& prompt, const GenerateOptions& options,
                    core::Rng& rng) {
  check(model, task, prompt, options);
  const std::size_t wanted =
      options.max_tokens > 0 ? options.max_tokens : task.max_answer_len() + 1;
  // The k-th generated token is read from position prompt.size() + k - 1.
  const std::size_t limit = std::min(wanted, model.max_len() - prompt.size());

  const bool was_training = model.is_training();
  model.eval();
  core::NoGrad no_grad;
  Generation generation;
  std::vector<Token> sequence = prompt;
  sequence.push_back(Task::sep_id);
  for (std::size_t step = 0; step < limit; ++step) {
    const core::Ids ids{{1, sequence.size()}, sequence};
    const Token next = choose_token(last_row(model.forward(ids)), options, rng);
    generation.read = sequence;
    if (next == Task::eos_id) {
      generation.ended = true;
      break;
    }
    generation.answer.push_back(next);
    sequence.push_back(next);
  }
  model.train(was_training);
  return generation;
}

}  // namespace qkv::train
