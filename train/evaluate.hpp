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
//
// Split over the ranks of a data-parallel training (communicator.hpp): each rank
// evaluates its own share of the examples, the counts are summed, and every rank gets the
// whole set's result: the same counts, and the loss up to the float round-off of another
// order of additions.
//
//   EvalLabels labels = eval_labels(examples);                  // of the whole set
//   EvalResult all = evaluate(model, task, my_batches, world(), labels);
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "layers/transformer.hpp"
#include "tasks/task.hpp"
#include "train/communicator.hpp"

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

// The group and distance labels (>= 0) that occur in a set of examples, ascending: the
// counts a split evaluation sums.
struct EvalLabels {
  std::vector<int> groups, distances;
};
EvalLabels eval_labels(const std::vector<tasks::Example>& examples);

// The split evaluation (see above): `batches` hold this rank's examples, `labels` those of
// the whole set. Every rank of `communicator` must call it.
EvalResult evaluate(layers::Transformer& model, const tasks::Task& task,
                    const std::vector<tasks::Batch>& batches, Communicator& communicator,
                    const EvalLabels& labels);

}  // namespace qkv::train
