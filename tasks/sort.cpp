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

// A repeated token can be read from any of its copies, so each one is a source.
std::vector<std::vector<std::size_t>> SortTask::answer_sources(
    const std::vector<Token>& prompt) const {
  std::vector<std::vector<std::size_t>> sources;
  for (Token token : answer_to(prompt)) {
    std::vector<std::size_t>& positions = sources.emplace_back();
    for (std::size_t i = 0; i < prompt.size(); ++i)
      if (prompt[i] == token) positions.push_back(i);
  }
  return sources;
}

std::unique_ptr<Task> make_sort_task(const qkv::ConfigNode& options, LossOn loss_on,
                                     const std::string&) {
  return std::make_unique<SortTask>(read_sequence_options(options), loss_on);
}

}  // namespace qkv::tasks
