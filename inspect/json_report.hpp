// An Inspection as JSON: the tables (`qkv inspect --json`) and the attention maps
// (`attention.json`).
//
// attention.json, for CircuitsVis and BertViz:
//
//   {"format": "qkv.attention/1", "layers": L, "heads": H,
//    "tokens": ["a", "b", "SEP", ...],            // the first input
//    "attention": [[[[...], ...], ...], ...],     // [layer][head][query][key], rows sum to 1
//    "examples": [{"tokens": [...], "attention": [...]}, ...]}   // every input, same shape
//
//   # CircuitsVis: one layer's heads, [head][query][key]
//   cv.attention.attention_patterns(tokens=d["tokens"], attention=np.array(d["attention"][0]))
//   # BertViz: one (1, heads, query, key) tensor per layer
//   head_view([torch.tensor(a)[None] for a in d["attention"]], d["tokens"])
//
// The tables (--json): {"source", "task", "model", "layers", "heads", "weights": [per layer:
// {"layer", "attention_type", "analyzed", "note", "heads": [{"head", "wq_norm", "wk_norm",
// "wqk_norm" (qk merged), "wv_norm", "wo_norm", "qk": {"norm", "identity_cosine", "symmetry", "effective_rank",
// "top_singular_values"}, "ov": {...}}], "qk_similarity": [[...]], "ov_similarity": [[...]]}],
// "mean_qk_similarity", "patterns": null | {"inputs", "layers": [{"layer", "heads": [{"head",
// "self", "previous", "first", "sep", "source"}], "similarity": [[...]]}],
// "mean_similarity"}, "importance": null | {"samples", "intact": {"loss", "token_acc",
// "seq_acc"}, "heads_are_one", "note", "layers": [{"layer", "heads": [{"head", "zero":
// {"seq_acc", "loss", "seq_acc_drop", "loss_rise"}, "mean": {...}}]}]}}. A value that does
// not exist (an identity side's norm, a score without rows) is null.
#pragma once

#include <string>

#include "inspect/inspection.hpp"

namespace qkv::inspect {

std::string tables_json(const Inspection& inspection, int indent = 2);
// std::invalid_argument when the inspection has no samples.
std::string attention_json(const Inspection& inspection);

}  // namespace qkv::inspect
