// One pass over a model for `qkv inspect` (see inspection.hpp).
#include "inspect/inspection.hpp"

#include "train/evaluate.hpp"

namespace qkv::inspect {

namespace {

// The mean over tables of their off-diagonal means; empty when no table has two rows.
std::optional<double> mean_of_tables(const std::vector<Matrix>& tables) {
  double sum = 0;
  std::size_t n = 0;
  for (const Matrix& table : tables)
    if (const std::optional<double> m = mean_off_diagonal(table)) sum += *m, ++n;
  if (n == 0) return std::nullopt;
  return sum / static_cast<double>(n);
}

}  // namespace

std::string describe_model(const layers::Transformer& model) {
  const std::string text = std::to_string(model.layers()) + " layers, " +
                           model.options().attention.type;
  const auto* attention =
      dynamic_cast<const layers::MultiHeadAttention*>(&model.block(0).attention());
  if (attention == nullptr)
    return text + ", d_model " + std::to_string(model.d_model()) + ", heads " +
           std::to_string(model.options().heads);
  const layers::MultiHeadAttentionOptions& o = attention->options();
  if (layers::attention_shape(o).one_head_for_all)
    return text + ": d_model " + std::to_string(o.d_model) + ", heads " + std::to_string(o.heads) +
           ", projections none";
  return text + ": " + layers::describe(o);
}

Inspection inspect_model(layers::Transformer& model, const tasks::Task& task,
                         const InspectOptions& options) {
  Inspection inspection;
  inspection.source = options.source;
  inspection.task = task.name();
  inspection.model = describe_model(model);
  inspection.layers = model.layers();
  inspection.heads = model.options().heads;
  inspection.weights = analyze_weights(model);
  std::vector<Matrix> qk_tables;
  for (const LayerWeightStats& layer : inspection.weights.layers)
    if (layer.analyzed) qk_tables.push_back(layer.qk_similarity);
  inspection.mean_qk_similarity = mean_of_tables(qk_tables);

  if (!options.inputs.empty()) {
    inspection.samples = collect_attention(model, task, options.inputs);
    inspection.scores = pooled_pattern_scores(inspection.samples);
    inspection.pattern_similarity = pattern_similarity(inspection.samples);
    inspection.mean_pattern_similarity = mean_of_tables(inspection.pattern_similarity);
  }
  if (options.importance_samples > 0) {
    const std::vector<tasks::Batch> batches = train::make_eval_batches(
        task, task.eval_examples(options.importance_samples, options.seed));
    inspection.importance = head_importance(model, task, batches);
    inspection.importance_samples = options.importance_samples;
  }
  return inspection;
}

}  // namespace qkv::inspect
