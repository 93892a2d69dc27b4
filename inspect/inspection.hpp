// Inspection: everything `qkv inspect` reports about one model, gathered in one pass, for
// the renderers (text_report.hpp, json_report.hpp, svg.hpp, html_report.hpp) to draw.
//
//   weights      per layer and head, from the weights alone (weights.hpp)
//   samples      each input's attention maps (attention_maps.hpp); inputs are typed token
//                sequences or held-out task examples
//   scores       pattern scores pooled over the samples (patterns.hpp)
//   pattern_similarity   per layer, head-to-head cosine of the maps
//   importance   zero / mean ablation of each head on held-out examples (importance.hpp)
//
//   InspectOptions options;
//   options.inputs = {task.encode("a b c SEP a b c")};
//   options.importance_samples = 256;
//   Inspection inspection = inspect_model(model, task, options);
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "inspect/attention_maps.hpp"
#include "inspect/importance.hpp"
#include "inspect/patterns.hpp"
#include "inspect/weights.hpp"
#include "layers/transformer.hpp"
#include "tasks/task.hpp"

namespace qkv::inspect {

struct InspectOptions {
  std::string source;  // what is inspected, for the reports' titles (a checkpoint path)
  std::vector<std::vector<tasks::Token>> inputs;  // what the model reads, one per sample
  // Held-out examples for head importance; 0: no importance.
  std::size_t importance_samples = 0;
  std::uint64_t seed = 0;  // of those examples
};

// The model's shape and attention options, one line of text ("2 layers,
// multi_head_attention: d_model 32, heads 2, wq learned, wk learned, wv learned, wo
// learned, qk separate").
std::string describe_model(const layers::Transformer& model);

struct Inspection {
  std::string source;
  std::string task;
  std::string model;  // describe_model
  std::size_t layers = 0, heads = 0;
  WeightReport weights;
  std::optional<double> mean_qk_similarity;  // over layers, off-diagonal (weights.hpp)
  std::vector<AttentionSample> samples;
  std::vector<std::vector<PatternScores>> scores;  // [layer][head], empty without samples
  std::vector<Matrix> pattern_similarity;          // per layer, empty without samples
  std::optional<double> mean_pattern_similarity;
  std::optional<ImportanceReport> importance;
  std::size_t importance_samples = 0;
};

Inspection inspect_model(layers::Transformer& model, const tasks::Task& task,
                         const InspectOptions& options);

}  // namespace qkv::inspect
