// An Inspection as JSON (see json_report.hpp).
#include "inspect/json_report.hpp"

#include <stdexcept>

#include <nlohmann/json.hpp>

namespace qkv::inspect {

namespace {

using Json = nlohmann::ordered_json;

Json value(const std::optional<double>& v) { return v ? Json(*v) : Json(nullptr); }

Json table(const Matrix& m) {
  Json rows = Json::array();
  for (std::size_t r = 0; r < m.rows; ++r) {
    Json row = Json::array();
    for (std::size_t c = 0; c < m.cols; ++c) row.push_back(m(r, c));
    rows.push_back(std::move(row));
  }
  return rows;
}

Json circuit(const CircuitStats& s) {
  return {{"norm", s.norm},
          {"identity_cosine", s.identity_cosine},
          {"symmetry", s.symmetry},
          {"effective_rank", s.effective_rank},
          {"top_singular_values", s.top_singular_values}};
}

Json weights(const WeightReport& report) {
  Json layers = Json::array();
  for (std::size_t l = 0; l < report.layers.size(); ++l) {
    const LayerWeightStats& layer = report.layers[l];
    Json heads = Json::array();
    for (std::size_t h = 0; h < layer.heads.size(); ++h) {
      const HeadWeightStats& s = layer.heads[h];
      heads.push_back({{"head", h},
                       {"wq_norm", value(s.wq_norm)},
                       {"wk_norm", value(s.wk_norm)},
                       {"wqk_norm", value(s.wqk_norm)},
                       {"wv_norm", value(s.wv_norm)},
                       {"wo_norm", value(s.wo_norm)},
                       {"qk", circuit(s.qk)},
                       {"ov", circuit(s.ov)}});
    }
    layers.push_back({{"layer", l},
                      {"attention_type", layer.attention_type},
                      {"analyzed", layer.analyzed},
                      {"note", layer.note},
                      {"heads", heads},
                      {"qk_similarity", table(layer.qk_similarity)},
                      {"ov_similarity", table(layer.ov_similarity)}});
  }
  return layers;
}

Json patterns(const Inspection& in) {
  if (in.samples.empty()) return nullptr;
  Json layers = Json::array();
  for (std::size_t l = 0; l < in.scores.size(); ++l) {
    Json heads = Json::array();
    for (std::size_t h = 0; h < in.scores[l].size(); ++h) {
      const PatternScores& s = in.scores[l][h];
      heads.push_back({{"head", h},
                       {"self", value(s.self)},
                       {"previous", value(s.previous)},
                       {"first", value(s.first)},
                       {"sep", value(s.sep)},
                       {"source", value(s.source)}});
    }
    layers.push_back({{"layer", l}, {"heads", heads}, {"similarity", table(in.pattern_similarity[l])}});
  }
  return {{"inputs", in.samples.size()},
          {"layers", layers},
          {"mean_similarity", value(in.mean_pattern_similarity)}};
}

Json effect(const AblationEffect& e) {
  return {{"seq_acc", e.seq_acc},
          {"loss", e.loss},
          {"seq_acc_drop", e.seq_acc_drop},
          {"loss_rise", e.loss_rise}};
}

Json importance(const Inspection& in) {
  if (!in.importance) return nullptr;
  const ImportanceReport& r = *in.importance;
  Json layers = Json::array();
  for (std::size_t l = 0; l < r.layers.size(); ++l) {
    Json heads = Json::array();
    for (std::size_t h = 0; h < r.layers[l].size(); ++h)
      heads.push_back({{"head", h}, {"zero", effect(r.layers[l][h].zero)},
                       {"mean", effect(r.layers[l][h].mean)}});
    layers.push_back({{"layer", l}, {"heads", heads}});
  }
  return {{"samples", r.intact.samples},
          {"intact", {{"loss", r.intact.loss},
                      {"token_acc", r.intact.token_acc},
                      {"seq_acc", r.intact.seq_acc}}},
          {"heads_are_one", r.heads_are_one},
          {"note", r.note},
          {"layers", layers}};
}

// [layer][head][query][key]
Json attention_of(const AttentionSample& sample) {
  Json layers = Json::array();
  for (const std::vector<Matrix>& layer : sample.maps) {
    Json heads = Json::array();
    for (const Matrix& map : layer) heads.push_back(table(map));
    layers.push_back(std::move(heads));
  }
  return layers;
}

}  // namespace

std::string tables_json(const Inspection& in, int indent) {
  const Json out = {{"source", in.source},
                    {"task", in.task},
                    {"model", in.model},
                    {"layers", in.layers},
                    {"heads", in.heads},
                    {"weights", weights(in.weights)},
                    {"mean_qk_similarity", value(in.mean_qk_similarity)},
                    {"patterns", patterns(in)},
                    {"importance", importance(in)}};
  return out.dump(indent);
}

std::string attention_json(const Inspection& in) {
  if (in.samples.empty())
    throw std::invalid_argument("attention.json: no inputs were inspected (give --input or --sample)");
  Json examples = Json::array();
  for (const AttentionSample& sample : in.samples)
    examples.push_back({{"tokens", sample.tokens}, {"attention", attention_of(sample)}});
  const Json out = {{"format", "qkv.attention/1"},
                    {"layers", in.layers},
                    {"heads", in.heads},
                    {"tokens", in.samples[0].tokens},
                    {"attention", attention_of(in.samples[0])},
                    {"examples", examples}};
  return out.dump();
}

}  // namespace qkv::inspect
