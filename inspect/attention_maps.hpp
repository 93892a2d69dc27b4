// Attention maps of whole inputs: every layer's and head's probabilities for each input,
// with the token names and the positions the pattern scores ask about; and what is read
// from many of them at once (pattern scores pooled over inputs, head-to-head similarity
// of the patterns).
//
// Maps come from the attention slot's AttentionLayer (capture_attention), so a user's
// attention layer is inspected like the built-in one. Each input is its own forward pass
// (no padding), in evaluation mode and without a graph; the model's training mode is
// restored, and attention capture is off afterwards.
//
//   std::vector<std::vector<Token>> inputs = {model_input(task, example), task.encode("a b SEP a")};
//   std::vector<AttentionSample> samples = collect_attention(model, task, inputs);
//   const Matrix& map = samples[0].maps[layer][head];   // T × T, map(query, key)
//   std::vector<Matrix> sim = pattern_similarity(samples);   // per layer, H × H
#pragma once

#include <string>
#include <vector>

#include "inspect/matrix.hpp"
#include "inspect/patterns.hpp"
#include "layers/transformer.hpp"
#include "tasks/task.hpp"

namespace qkv::inspect {

struct AttentionSample {
  std::vector<tasks::Token> ids;    // what the model read
  std::vector<std::string> tokens;  // their names
  PositionRoles roles;
  std::vector<std::vector<Matrix>> maps;  // [layer][head], each T × T
};

// What the model reads of an example in evaluation: the inputs row of a batch of it alone
// (prompt SEP answer, Task::make_batch).
std::vector<tasks::Token> model_input(const tasks::Task& task, const tasks::Example& example);

// One sample per input. An empty input, one longer than the model's max_len or with an id
// outside the vocabulary is std::invalid_argument naming the input and the limit.
std::vector<AttentionSample> collect_attention(layers::Transformer& model, const tasks::Task& task,
                                               const std::vector<std::vector<tasks::Token>>& inputs);

// Per layer, then head: scores pooled over every sample's rows.
std::vector<std::vector<PatternScores>> pooled_pattern_scores(
    const std::vector<AttentionSample>& samples);

// Per layer, H × H: the cosine similarity of two heads' maps, every sample's entries
// taken together. Empty without samples.
std::vector<Matrix> pattern_similarity(const std::vector<AttentionSample>& samples);

}  // namespace qkv::inspect
