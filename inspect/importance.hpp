// Head importance: what the model loses on held-out examples when one head is switched
// off (Michel et al. 2019, "Are sixteen heads really better than one?").
//
// A head is switched off at its output before wo, the hook point blocks.<i>.attn.hook_z
// (B, T, h, Dv), in two ways:
//   zero ablation  its output is 0 at every position (Michel et al.'s head mask)
//   mean ablation  its output is its mean over every real position of the same examples,
//                  so what the head says on average stays and only what it says about
//                  this input goes
// Importance is the drop in seq_acc and the rise in loss against the intact model, on the
// same batches (train::evaluate). With `projections: none` the heads are one head, computed
// once (hook_z has h = 1): ablating "a head" switches off all of them, and every head
// shows that one number. A layer in the attention slot without hook_z (a user's attention
// layer) gets no importance.
//
//   std::vector<tasks::Batch> batches = train::make_eval_batches(task, task.eval_examples(256, seed));
//   ImportanceReport r = head_importance(model, task, batches);
//   double drop = r.layers[0][1].zero.seq_acc_drop;
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "layers/transformer.hpp"
#include "tasks/task.hpp"
#include "train/evaluate.hpp"

namespace qkv::inspect {

struct AblationEffect {
  double seq_acc = 0;       // of the ablated model
  double loss = 0;
  double seq_acc_drop = 0;  // intact seq_acc - ablated seq_acc
  double loss_rise = 0;     // ablated loss - intact loss
};

struct HeadImportance {
  AblationEffect zero, mean;
};

struct ImportanceReport {
  train::EvalResult intact;
  // [layer][head]; a layer without hook_z has no entries.
  std::vector<std::vector<HeadImportance>> layers;
  bool heads_are_one = false;  // projections none: one computed head stands for all
  std::string note;            // what was left out and why ("" when nothing was)
};

// `batches` from train::make_eval_batches. The model's hooks are as they were afterwards
// (the ablation hooks are removed, however evaluation ends).
ImportanceReport head_importance(layers::Transformer& model, const tasks::Task& task,
                                 const std::vector<tasks::Batch>& batches);

}  // namespace qkv::inspect
