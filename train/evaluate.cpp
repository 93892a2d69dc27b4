// Teacher-forced evaluation on answer positions (see evaluate.hpp).
#include "train/evaluate.hpp"

#include <algorithm>
#include <map>
#include <stdexcept>

#include "core/ops.hpp"

namespace qkv::train {

namespace {

// Running counts for the whole set or one group.
struct Tally {
  std::size_t tokens = 0;
  std::size_t tokens_right = 0;
  std::size_t examples = 0;
  std::size_t examples_right = 0;

  double token_acc() const { return tokens > 0 ? double(tokens_right) / double(tokens) : 0.0; }
  double seq_acc() const {
    return examples > 0 ? double(examples_right) / double(examples) : 0.0;
  }
};

// Scores one batch's logits (B, T, V) against its targets on answer positions.
template <class T>
void tally_batch(const core::Tensor& logits, const tasks::Batch& batch, Tally& total,
                 std::map<int, Tally>& groups, std::map<int, Tally>& distances) {
  const std::size_t B = batch.batch_size();
  const std::size_t Tn = batch.seq_len();
  const std::size_t V = logits.size(-1);
  const T* rows = logits.data<T>();
  for (std::size_t b = 0; b < B; ++b) {
    std::size_t answer_tokens = 0;
    std::size_t right = 0;
    for (std::size_t t = 0; t < Tn; ++t) {
      const std::size_t i = b * Tn + t;
      if (!batch.answer_mask[i]) continue;
      const T* row = rows + i * V;
      const auto predicted = static_cast<tasks::Token>(std::max_element(row, row + V) - row);
      ++answer_tokens;
      right += predicted == batch.targets.values[i];
    }
    const bool all_right = right == answer_tokens;
    for (Tally* tally : {&total, batch.groups.empty() ? nullptr : &groups[batch.groups[b]],
                         batch.distances.empty() ? nullptr : &distances[batch.distances[b]]}) {
      if (tally == nullptr) continue;
      tally->tokens += answer_tokens;
      tally->tokens_right += right;
      tally->examples += 1;
      tally->examples_right += all_right;
    }
  }
}

}  // namespace

std::vector<tasks::Batch> make_eval_batches(const tasks::Task& task, const std::vector<tasks::Example>& examples,
                                     std::size_t batch_size) {
  if (batch_size == 0) throw std::invalid_argument("make_eval_batches: batch_size must be > 0");
  std::vector<tasks::Batch> batches;
  for (std::size_t begin = 0; begin < examples.size(); begin += batch_size) {
    const std::size_t end = std::min(examples.size(), begin + batch_size);
    batches.push_back(task.make_batch(
        std::vector<tasks::Example>(examples.begin() + static_cast<std::ptrdiff_t>(begin),
                             examples.begin() + static_cast<std::ptrdiff_t>(end))));
  }
  return batches;
}

EvalResult evaluate(layers::Transformer& model, const tasks::Task& task,
                    const std::vector<tasks::Batch>& batches) {
  const bool was_training = model.is_training();
  model.eval();
  core::NoGrad no_grad;
  Tally total;
  std::map<int, Tally> groups, distances;
  double loss_sum = 0;  // sum over answer positions of their cross-entropy
  for (const tasks::Batch& batch : batches) {
    const core::Tensor logits = model.forward(batch.inputs);
    const std::size_t before = total.tokens;
    if (logits.dtype() == core::DType::f32)
      tally_batch<float>(logits, batch, total, groups, distances);
    else
      tally_batch<double>(logits, batch, total, groups, distances);
    const std::size_t answer_tokens = total.tokens - before;
    if (answer_tokens > 0)
      loss_sum += core::cross_entropy(logits, batch.targets, batch.answer_mask).item() *
                  static_cast<double>(answer_tokens);
  }
  model.train(was_training);

  EvalResult result;
  result.loss = total.tokens > 0 ? loss_sum / static_cast<double>(total.tokens) : 0.0;
  result.token_acc = total.token_acc();
  result.seq_acc = total.seq_acc();
  result.samples = total.examples;
  const auto add_groups = [&](const std::string& name, const std::map<int, Tally>& tallies) {
    for (const auto& [label, tally] : tallies) {
      if (label < 0) continue;  // examples without a label
      result.groups.push_back({name + "=" + std::to_string(label), tally.token_acc(),
                               tally.seq_acc(), tally.examples});
    }
  };
  add_groups(task.group_name(), groups);
  add_groups("distance", distances);
  return result;
}

}  // namespace qkv::train
