// ReverseTask: the answer is the prompt reversed.
//
//   a c f b SEP b f c a EOS
//
//   task: {type: reverse, symbols: 16, min_len: 8, max_len: 16}   # sequence.hpp's keys
#pragma once

#include <memory>
#include <string>

#include "tasks/sequence.hpp"

namespace qkv::tasks {

class ReverseTask : public SequenceTask {
 public:
  ReverseTask(const SequenceTaskOptions& options, LossOn loss_on);
  std::vector<std::vector<std::size_t>> answer_sources(
      const std::vector<Token>& prompt) const override;

 protected:
  std::vector<Token> answer_to(std::vector<Token> prompt) const override;
};

// The `reverse` type (registry.hpp): options from read_sequence_options; no state.
std::unique_ptr<Task> make_reverse_task(const qkv::ConfigNode& options, LossOn loss_on,
                                        const std::string& state);

}  // namespace qkv::tasks
