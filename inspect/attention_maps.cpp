// Attention maps of whole inputs and what is read from many of them (see attention_maps.hpp).
#include "inspect/attention_maps.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>

#include "inspect/weights.hpp"

namespace qkv::inspect {

namespace {

// Restores a model's training mode and attention capture however the forward ends.
class InspectionMode {
 public:
  explicit InspectionMode(layers::Transformer& model)
      : model_(model), was_training_(model.is_training()) {
    model_.eval();
    model_.capture_attention(true);
  }
  ~InspectionMode() {
    model_.capture_attention(false);
    model_.train(was_training_);
  }
  InspectionMode(const InspectionMode&) = delete;
  InspectionMode& operator=(const InspectionMode&) = delete;

 private:
  layers::Transformer& model_;
  bool was_training_;
};

void check_input(const std::vector<tasks::Token>& ids, std::size_t index,
                 const layers::Transformer& model) {
  const std::string which = "input " + std::to_string(index);
  if (ids.empty()) throw std::invalid_argument(which + " is empty");
  if (ids.size() > model.max_len()) {
    throw std::invalid_argument(which + " has " + std::to_string(ids.size()) +
                                " tokens; the model reads at most " +
                                std::to_string(model.max_len()));
  }
  for (tasks::Token id : ids)
    if (id < 0 || static_cast<std::size_t>(id) >= model.vocab())
      throw std::invalid_argument(which + ": token id " + std::to_string(id) +
                                  " is outside the model's vocabulary of " +
                                  std::to_string(model.vocab()));
}

// (1, H, T, T) probabilities -> H maps of T × T.
std::vector<Matrix> head_maps(const core::Tensor& probabilities) {
  const std::size_t H = probabilities.size(1);
  const std::size_t T = probabilities.size(2);
  const std::size_t S = probabilities.size(3);
  const std::vector<double> values = probabilities.to_vector();
  std::vector<Matrix> maps(H, Matrix(T, S));
  for (std::size_t h = 0; h < H; ++h)
    std::copy(values.begin() + static_cast<std::ptrdiff_t>(h * T * S),
              values.begin() + static_cast<std::ptrdiff_t>((h + 1) * T * S),
              maps[h].values.begin());
  return maps;
}

}  // namespace

std::vector<tasks::Token> model_input(const tasks::Task& task, const tasks::Example& example) {
  return task.make_batch({example}).inputs.values;  // one row: no padding
}

std::vector<AttentionSample> collect_attention(layers::Transformer& model, const tasks::Task& task,
                                               const std::vector<std::vector<tasks::Token>>& inputs) {
  InspectionMode mode(model);
  core::NoGrad no_grad;
  std::vector<AttentionSample> samples;
  for (std::size_t n = 0; n < inputs.size(); ++n) {
    const std::vector<tasks::Token>& ids = inputs[n];
    check_input(ids, n, model);
    AttentionSample sample;
    sample.ids = ids;
    for (tasks::Token id : ids) sample.tokens.push_back(task.token_name(id));
    sample.roles = position_roles(ids, task);
    core::Ids batch{{1, ids.size()}, ids};
    model.forward(batch);
    for (const core::Tensor& layer : model.attention_maps()) sample.maps.push_back(head_maps(layer));
    samples.push_back(std::move(sample));
  }
  return samples;
}

std::vector<std::vector<PatternScores>> pooled_pattern_scores(
    const std::vector<AttentionSample>& samples) {
  if (samples.empty()) return {};
  std::vector<std::vector<PatternTally>> tallies;
  for (const std::vector<Matrix>& layer : samples[0].maps) tallies.emplace_back(layer.size());
  for (const AttentionSample& sample : samples)
    for (std::size_t l = 0; l < tallies.size(); ++l)
      for (std::size_t h = 0; h < tallies[l].size(); ++h)
        tallies[l][h].add(sample.maps[l][h], sample.roles);
  std::vector<std::vector<PatternScores>> scores(tallies.size());
  for (std::size_t l = 0; l < tallies.size(); ++l)
    for (const PatternTally& tally : tallies[l]) scores[l].push_back(tally.scores());
  return scores;
}

std::vector<Matrix> pattern_similarity(const std::vector<AttentionSample>& samples) {
  if (samples.empty()) return {};
  std::vector<Matrix> tables;
  for (std::size_t l = 0; l < samples[0].maps.size(); ++l) {
    const std::size_t H = samples[0].maps[l].size();
    // Each head's maps of every sample, end to end, as one 1 × N row.
    std::vector<Matrix> joined(H, Matrix(1, 0));
    for (const AttentionSample& sample : samples)
      for (std::size_t h = 0; h < H; ++h) {
        const std::vector<double>& v = sample.maps[l][h].values;
        joined[h].values.insert(joined[h].values.end(), v.begin(), v.end());
        joined[h].cols = joined[h].values.size();
      }
    Matrix table(H, H);
    for (std::size_t a = 0; a < H; ++a)
      for (std::size_t b = 0; b < H; ++b) table(a, b) = cosine_similarity(joined[a], joined[b]);
    tables.push_back(std::move(table));
  }
  return tables;
}

}  // namespace qkv::inspect
