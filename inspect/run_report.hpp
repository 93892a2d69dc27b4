// The run report (`qkv report RUN_DIR` writes RUN_DIR/report.html): a training run's curves
// drawn from its metrics.jsonl (train and held-out loss; token_acc and seq_acc; learning
// rate; gradient norm, all against step), its resolved config.yaml, and the inspect
// section of its best checkpoint (html_report.hpp). One self-contained page, offline.
//
//   RunMetrics metrics = read_metrics("runs/copy/metrics.jsonl");
//   std::string page = run_report_html("runs/copy", metrics, config_yaml, &inspection);
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "inspect/inspection.hpp"

namespace qkv::inspect {

struct RunMetrics {
  // Train lines.
  std::vector<double> train_step, train_loss, lr, grad_norm;
  // Eval lines.
  std::vector<double> eval_step, eval_loss, token_acc, seq_acc;
  // A last line without its newline (a run killed while writing it), left out.
  bool cut_last_line = false;
};

// std::runtime_error naming the file and line for a line that is not a JSON object with a
// numeric step and a split of "train" or "eval" (a last line cut short is left out, not an
// error), and for a file that cannot be read.
RunMetrics read_metrics(const std::string& path);

// `inspection` may be null (no best checkpoint yet): the page says so.
std::string run_report_html(const std::string& run_dir, const RunMetrics& metrics,
                            const std::string& config_yaml, const Inspection* inspection,
                            const std::string& inspect_note = "");

}  // namespace qkv::inspect
