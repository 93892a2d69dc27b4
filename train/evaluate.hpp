// Evaluation: loss, token accuracy and whole-sequence accuracy on held-out examples.
//
// Only answer positions count, each predicted from the true prefix (teacher forcing): a
// position is right when the argmax of its logits is the target. An example is right
// when all its answer positions are, which is what greedy decoding would produce, so
// seq_acc is exact match. Tasks with groups (agreement: the number of attractors) also
// get accuracy per group, and tasks whose examples say how far back the answer's source is
// (Example::distance) accuracy per distance ("distance=5").
//
//   std::vector<tasks::Batch> batches = make_eval_batches(task, task.eval_examples(512, seed));
//   EvalResult result = evaluate(model, task, batches);
//   std::printf("%.3f\n", result.seq_acc);
//
// The model runs in evaluation mode (no dropout) and without a graph; its training mode
// is restored afterwards.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "layers/transformer.hpp"
#include "tasks/task.hpp"

namespace qkv::train {

// Accuracy of one group of examples (e.g. "attractors=2").
struct GroupResult {
  std::string name;
  double token_acc = 0;
  double seq_acc = 0;
  std::size_t samples = 0;
};

struct EvalResult {
  double loss = 0;       // mean cross-entropy over answer positions
  double token_acc = 0;  // answer positions predicted right
  double seq_acc = 0;    // examples whose every answer position is right
  std::size_t samples = 0;
  // By group label, ascending, then by distance, ascending; empty if the task has neither.
  std::vector<GroupResult> groups;
};

// Examples packed into padded batches of at most `batch_size` rows (made once per run,
// reused at every evaluation).
std::vector<tasks::Batch> make_eval_batches(const tasks::Task& task, const std::vector<tasks::Example>& examples,
                                     std::size_t batch_size = 256);

EvalResult evaluate(layers::Transformer& model, const tasks::Task& task,
                    const std::vector<tasks::Batch>& batches);

}  // namespace qkv::train
