// metrics.jsonl: one JSON object per line, for plots and for comparing runs.
//
//   {"step":100,"split":"train","loss":1.93,"lr":0.001,"elapsed_s":0.41,
//    "grad_norm":0.82,"tokens_per_s":812345.1}
//   {"step":100,"split":"eval","loss":1.88,"lr":0.001,"elapsed_s":0.43,
//    "token_acc":0.41,"seq_acc":0.02,"samples":512,"groups":{"attractors=0":{...}}}
//
//   {"step":100,"split":"note","note":"resumed with --force: the task changed",
//    "was":"task:\n  type: copy\n...","now":"task:\n  type: reverse\n..."}
//
//   MetricsLog log("runs/copy/metrics.jsonl", /*resume_step=*/std::nullopt);
//   log.train({step, loss, lr, elapsed_s, grad_norm, tokens_per_s});
//
// A note records a deliberate change to the run (readers of the curves skip it).
//
// Numbers are written with full precision (a resumed run's losses can be compared bit for
// bit). Each line is flushed, so a killed run keeps everything it reported.
#pragma once

#include <cstddef>
#include <cstdio>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "train/evaluate.hpp"

namespace qkv::train {

struct TrainMetrics {
  std::size_t step = 0;
  double loss = 0;       // mean training loss since the previous train line
  double lr = 0;         // the rate of the last step
  double elapsed_s = 0;  // training time of the whole run (resumed runs go on counting)
  double grad_norm = 0;  // global gradient norm before clipping, of the last step
  double tokens_per_s = 0;
};

struct EvalMetrics {
  std::size_t step = 0;
  double lr = 0;
  double elapsed_s = 0;
  EvalResult result;
};

class MetricsLog {
 public:
  // Opens `path` for appending. A resumed run passes the step it resumes from: lines of
  // later steps (written after that checkpoint by the run that stopped) are dropped, so
  // the file reads as one uninterrupted run. Without it the file starts empty.
  MetricsLog(const std::string& path, std::optional<std::size_t> resume_step);
  ~MetricsLog();
  MetricsLog(const MetricsLog&) = delete;
  MetricsLog& operator=(const MetricsLog&) = delete;

  void train(const TrainMetrics& metrics);
  void eval(const EvalMetrics& metrics);
  // {"step":…,"split":"note","note":…} and `details` as string fields, in their order.
  void note(std::size_t step, const std::string& note,
            const std::vector<std::pair<std::string, std::string>>& details = {});

 private:
  void write_line(const std::string& line);

  std::string path_;
  std::FILE* file_ = nullptr;
};

}  // namespace qkv::train
