// GeneratedTask: the base of tasks whose examples are drawn at random (copy, reverse, sort,
// agreement, recall). It holds out part of the prompt space for evaluation.
//
// A prompt is an evaluation prompt when a hash of its tokens falls in 1 of 16 buckets.
// Training draws reject evaluation prompts and evaluation draws keep only them, so the
// two never share a prompt, however small the space. Rejection costs about 1/15 extra
// draws in training and 16 draws per evaluation example; a space so small that one side
// stays empty after many tries is reported as an error.
//
//   class MyTask : public GeneratedTask {
//     Example draw(core::Rng& rng) const override;   // any prompt of the space
//   };
#pragma once

#include <string>
#include <vector>

#include "tasks/task.hpp"

namespace qkv::tasks {

class GeneratedTask : public Task {
 public:
  // `count` draws from Rng(seed).split(eval_stream) that are evaluation prompts.
  std::vector<Example> eval_examples(std::size_t count, std::uint64_t seed) const override;

  static bool is_eval_prompt(const std::vector<Token>& prompt);

 protected:
  using Task::Task;

  // One example from the task's whole space.
  virtual Example draw(core::Rng& rng) const = 0;
  Example draw_training(core::Rng& rng) const override;

 private:
  Example draw_where(core::Rng& rng, bool eval) const;
};

// Names for n symbols: "a".."z" when n <= 26, else prefix + index ("s0", "s1", ...).
std::vector<std::string> letter_names(std::size_t n, const std::string& prefix);

// k distinct values of 0..n-1 in random order: the first k entries of a uniformly shuffled
// 0..n-1 (partial Fisher-Yates, k draws). k <= n.
std::vector<std::size_t> choose_distinct(std::size_t n, std::size_t k, core::Rng& rng);

// Token id of the task's i-th own token (after PAD, SEP and EOS).
inline Token own_token(std::size_t i) { return static_cast<Token>(i) + Task::first_own_id; }

}  // namespace qkv::tasks
