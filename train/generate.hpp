// Generation: a model's answer to a prompt, one token at a time, read as the tasks write
// examples. The model reads `prompt SEP` and the tokens it has produced so far; each step
// appends the token chosen from the logits of the last position, and the answer ends when
// that token is EOS (tasks/task.hpp), after `max_tokens`, or when the model's positions
// run out.
//
// Choosing a token: greedy (temperature 0, the default) takes the argmax, the lowest id
// among equal logits, so greedy generation reproduces an example exactly when evaluate()'s
// teacher-forced exact match counts it right. With a temperature T > 0 the token is drawn
// from softmax(logits / T) over the top_k most likely tokens (all when top_k is 0), with
// one rng.uniform() per step; top_k 1 is greedy.
//
//   std::vector<tasks::Token> prompt = parse_prompt(task, "a c f b");  // errors list tokens
//   GenerateOptions options;                       // greedy, up to the longest answer + EOS
//   core::Rng rng(seed);                           // used only when temperature > 0
//   Generation g = generate(model, task, prompt, options, rng);
//   std::cout << task.decode(g.answer) << (g.ended ? "" : " (no EOS)") << "\n";
//
// Every step is a forward pass over the whole sequence (no key-value cache: qkv's models
// and sequences are small), in evaluation mode and without a graph; the model's training
// mode is restored afterwards. A model that never learned EOS still stops at max_tokens.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "core/random.hpp"
#include "layers/transformer.hpp"
#include "tasks/task.hpp"

namespace qkv::train {

struct GenerateOptions {
  double temperature = 0;  // 0: greedy; > 0: sample from softmax(logits / temperature)
  std::size_t top_k = 0;   // sample among the k most likely tokens; 0: all of them
  // Tokens generated at most, EOS included; 0: task.max_answer_len() + 1. Never more than
  // the model's positions hold (max_len - prompt length).
  std::size_t max_tokens = 0;
};

struct Generation {
  std::vector<tasks::Token> answer;  // the generated tokens, without the EOS
  bool ended = false;                // the model produced EOS
  // What the last forward pass read: prompt SEP and the answer but its last token when no
  // EOS ended it. Position prompt.size() + j of it produced generated token j.
  std::vector<tasks::Token> read;
};

// The prompt's tokens, by name, separated by white space. Throws std::invalid_argument for
// an empty prompt, a name the task does not know or one of PAD, SEP and EOS, which are
// not prompt tokens; the message lists the task's own tokens.
std::vector<tasks::Token> parse_prompt(const tasks::Task& task, const std::string& text);

// Throws std::invalid_argument for an empty prompt, a prompt id outside the task's own
// tokens, a prompt that leaves the model no position to answer in, a model whose
// vocabulary is not the task's, a negative or NaN temperature.
Generation generate(layers::Transformer& model, const tasks::Task& task,
                    const std::vector<tasks::Token>& prompt, const GenerateOptions& options,
                    core::Rng& rng);

// The token generate() chooses from one position's logits (V values); draws from rng only
// when sampling.
tasks::Token choose_token(const std::vector<double>& logits, const GenerateOptions& options,
                          core::Rng& rng);

}  // namespace qkv::train
