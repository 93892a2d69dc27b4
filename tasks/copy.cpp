// CopyTask: the prompt, repeated after SEP.
#include "tasks/copy.hpp"

namespace qkv::tasks {

CopyTask::CopyTask(const SequenceTaskOptions& options, LossOn loss_on)
    : SequenceTask("copy", options, loss_on) {}

std::vector<Token> CopyTask::answer_to(std::vector<Token> prompt) const { return prompt; }

std::unique_ptr<Task> make_copy_task(const qkv::ConfigNode& options, LossOn loss_on,
                                     const std::string&) {
  return std::make_unique<CopyTask>(read_sequence_options(options), loss_on);
}

}  // namespace qkv::tasks
