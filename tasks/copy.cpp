// CopyTask: the prompt, repeated after SEP.
#include "tasks/copy.hpp"

namespace qkv::tasks {

CopyTask::CopyTask(const SequenceTaskOptions& options, LossOn loss_on)
    : SequenceTask("copy", options, loss_on) {}

std::vector<Token> CopyTask::answer_to(std::vector<Token> prompt) const { return prompt; }

std::vector<std::vector<std::size_t>> CopyTask::answer_sources(
    const std::vector<Token>& prompt) const {
  std::vector<std::vector<std::size_t>> sources(prompt.size());
  for (std::size_t j = 0; j < prompt.size(); ++j) sources[j] = {j};
  return sources;
}

std::unique_ptr<Task> make_copy_task(const qkv::ConfigNode& options, LossOn loss_on,
                                     const std::string&) {
  return std::make_unique<CopyTask>(read_sequence_options(options), loss_on);
}

}  // namespace qkv::tasks
