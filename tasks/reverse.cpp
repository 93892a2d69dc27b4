// ReverseTask: the prompt, read backwards after SEP.
#include "tasks/reverse.hpp"

#include <algorithm>

namespace qkv::tasks {

ReverseTask::ReverseTask(const SequenceTaskOptions& options, LossOn loss_on)
    : SequenceTask("reverse", options, loss_on) {}

std::vector<Token> ReverseTask::answer_to(std::vector<Token> prompt) const {
  std::reverse(prompt.begin(), prompt.end());
  return prompt;
}

std::vector<std::vector<std::size_t>> ReverseTask::answer_sources(
    const std::vector<Token>& prompt) const {
  const std::size_t L = prompt.size();
  std::vector<std::vector<std::size_t>> sources(L);
  for (std::size_t j = 0; j < L; ++j) sources[j] = {L - 1 - j};
  return sources;
}

std::unique_ptr<Task> make_reverse_task(const qkv::ConfigNode& options, LossOn loss_on,
                                        const std::string&) {
  return std::make_unique<ReverseTask>(read_sequence_options(options), loss_on);
}

}  // namespace qkv::tasks
