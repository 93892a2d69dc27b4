// SortTask: the prompt's tokens in id order after SEP.
#include "tasks/sort.hpp"

#include <algorithm>

namespace qkv::tasks {

SortTask::SortTask(const SequenceTaskOptions& options, LossOn loss_on)
    : SequenceTask("sort", options, loss_on) {}

std::vector<Token> SortTask::answer_to(std::vector<Token> prompt) const {
  std::sort(prompt.begin(), prompt.end());
  return prompt;
}

std::unique_ptr<Task> make_sort_task(const qkv::ConfigNode& options, LossOn loss_on,
                                     const std::string&) {
  return std::make_unique<SortTask>(read_sequence_options(options), loss_on);
}

}  // namespace qkv::tasks
