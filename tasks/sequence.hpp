// SequenceTask: copy, reverse and sort. The prompt is min_len..max_len tokens drawn
// uniformly from `symbols` letters; the answer is the prompt, reversed, or sorted by id
// (ascending, repeats kept).
//
//   SequenceTask task(SequenceKind::reverse, {/*symbols=*/16, /*min_len=*/8, /*max_len=*/16},
//                     LossOn::answer);
#pragma once

#include "tasks/generated.hpp"

namespace qkv::tasks {

enum class SequenceKind { copy, reverse, sort };

class SequenceTask : public GeneratedTask {
 public:
  // Throws std::invalid_argument unless 1 <= symbols and 1 <= min_len <= max_len.
  SequenceTask(SequenceKind kind, const SequenceTaskOptions& options, LossOn loss_on);

 protected:
  Example draw(core::Rng& rng) const override;

 private:
  SequenceKind kind_;
  SequenceTaskOptions options_;
};

}  // namespace qkv::tasks
