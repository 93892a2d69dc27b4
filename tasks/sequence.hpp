// SequenceTask: the base of copy, reverse and sort (copy.hpp, reverse.hpp, sort.hpp). The
// prompt is min_len..max_len tokens drawn uniformly from `symbols` letters; each task
// makes the answer from the prompt. The three share their options and config keys:
//
//   task: {type: reverse, symbols: 16, min_len: 8, max_len: 16}
//
//   SequenceTaskOptions options = read_sequence_options(section.options);
//   ReverseTask task(options, LossOn::answer);
#pragma once

#include <string>
#include <vector>

#include "strict_yaml/config_node.hpp"
#include "tasks/generated.hpp"

namespace qkv::tasks {

struct SequenceTaskOptions {
  std::size_t symbols = 16;
  std::size_t min_len = 8;
  std::size_t max_len = 16;
};

// The keys symbols, min_len and max_len (defaults above). A ConfigError at the key unless
// 1 <= symbols and 1 <= min_len <= max_len.
SequenceTaskOptions read_sequence_options(const qkv::ConfigNode& node);

class SequenceTask : public GeneratedTask {
 protected:
  // `name` names the task in errors. Throws std::invalid_argument unless 1 <= symbols and
  // 1 <= min_len <= max_len.
  SequenceTask(const std::string& name, const SequenceTaskOptions& options, LossOn loss_on);

  // The answer to `prompt` (the prompt itself, reversed, sorted).
  virtual std::vector<Token> answer_to(std::vector<Token> prompt) const = 0;

  Example draw(core::Rng& rng) const final;

 private:
  SequenceTaskOptions options_;
};

}  // namespace qkv::tasks
