// Teacher-forced evaluation on answer positions (see evaluate.hpp).
#include "train/evaluate.hpp"

#include <algorithm>
#include <map>
#include <set>
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

namespace {

// What one evaluation counts, before the counts become rates.
struct Counts {
  Tally total;
  std::map<int, Tally> groups, distances;
  double loss_sum = 0;  // sum over answer positions of their cross-entropy
};

Counts count(layers::Transformer& model, const std::vector<tasks::Batch>& batches) {
  const bool was_training = model.is_training();
  model.eval();
  core::NoGrad no_grad;
  Counts counts;
  for (const tasks::Batch& batch : batches) {
    const core::Tensor logits = model.forward(batch.inputs);
    const std::size_t before = counts.total.tokens;
    if (logits.dtype() == core::DType::f32)
      tally_batch<float>(logits, batch, counts.total, counts.groups, counts.distances);
    else
      tally_batch<double>(logits, batch, counts.total, counts.groups, counts.distances);
    const std::size_t answer_tokens = counts.total.tokens - before;
    if (answer_tokens > 0)
      counts.loss_sum += core::cross_entropy(logits, batch.targets, batch.answer_mask).item() *
                         static_cast<double>(answer_tokens);
  }
  model.train(was_training);
  return counts;
}

EvalResult result_of(const Counts& counts, const tasks::Task& task) {
  EvalResult result;
  const Tally& total = counts.total;
  result.loss = total.tokens > 0 ? counts.loss_sum / static_cast<double>(total.tokens) : 0.0;
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
  add_groups(task.group_name(), counts.groups);
  add_groups("distance", counts.distances);
  return result;
}

// The counts as one vector of doubles (exact: counts stay far below 2^53) in the layout
// the labels give: the total, the loss sum, then each group's and each distance's tally.
std::vector<double> flatten(const Counts& counts, const EvalLabels& labels) {
  std::vector<double> flat;
  const auto put = [&flat](const Tally& t) {
    flat.insert(flat.end(), {double(t.tokens), double(t.tokens_right), double(t.examples),
                             double(t.examples_right)});
  };
  put(counts.total);
  flat.push_back(counts.loss_sum);
  const auto put_all = [&](const std::vector<int>& keys, const std::map<int, Tally>& tallies) {
    for (int key : keys) {
      const auto it = tallies.find(key);
      put(it == tallies.end() ? Tally{} : it->second);
    }
  };
  put_all(labels.groups, counts.groups);
  put_all(labels.distances, counts.distances);
  return flat;
}

Counts unflatten(const std::vector<double>& flat, const EvalLabels& labels) {
  std::size_t at = 0;
  const auto take = [&flat, &at]() {
    Tally t;
    t.tokens = static_cast<std::size_t>(flat[at]);
    t.tokens_right = static_cast<std::size_t>(flat[at + 1]);
    t.examples = static_cast<std::size_t>(flat[at + 2]);
    t.examples_right = static_cast<std::size_t>(flat[at + 3]);
    at += 4;
    return t;
  };
  Counts counts;
  counts.total = take();
  counts.loss_sum = flat[at++];
  for (int key : labels.groups) counts.groups[key] = take();
  for (int key : labels.distances) counts.distances[key] = take();
  return counts;
}

}  // namespace

EvalResult evaluate(layers::Transformer& model, const tasks::Task& task,
                    const std::vector<tasks::Batch>& batches) {
  return result_of(count(model, batches), task);
}

EvalLabels eval_labels(const std::vector<tasks::Example>& examples) {
  std::set<int> groups, distances;
  for (const tasks::Example& example : examples) {
    if (example.group >= 0) groups.insert(example.group);
    if (example.distance >= 0) distances.insert(example.distance);
  }
  return {{groups.begin(), groups.end()}, {distances.begin(), distances.end()}};
}

EvalResult evaluate(layers::Transformer& model, const tasks::Task& task,
                    const std::vector<tasks::Batch>& batches, Communicator& communicator,
                    const EvalLabels& labels) {
  std::vector<double> flat = flatten(count(model, batches), labels);
  communicator.allreduce_sum(flat.data(), flat.size());
  return result_of(unflatten(flat, labels), task);
}

}  // namespace qkv::train
