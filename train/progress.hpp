// Progress of a training run for a person watching it.
//
// On a terminal: one self-redrawing line (step, bar, loss, eval accuracy, tokens/s, ETA),
// redrawn at most ten times a second so drawing never shows in the step time. Anywhere
// else (a log file, a pipe, CI): one plain line per call to line(), nothing in between, so
// logs stay readable.
//
//   Progress progress(stdout, is_terminal(stdout), 5000, 0);
//   for (...) {
//     progress.update(step, loss, tokens_per_s);
//     if (evaluated) progress.line(step, loss, tokens_per_s, eval_text);
//   }
//   progress.finish();
//
// Messages from elsewhere (warnings, "saved best") go through message() so they don't
// tangle with the bar.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdio>
#include <string>

namespace qkv::train {

bool is_terminal(std::FILE* stream);

class Progress {
 public:
  // Steps run from start_step (0, or the step a resumed run continues from) to total_steps.
  Progress(std::FILE* out, bool terminal, std::size_t total_steps, std::size_t start_step);

  // After each training step: redraws the bar on a terminal (throttled), nothing otherwise.
  void update(std::size_t step, double loss, double tokens_per_s);
  // A periodic report (after an evaluation): the bar on a terminal, a plain line otherwise.
  // `eval_text` is shown as is, e.g. "eval seq_acc 0.871 token_acc 0.962".
  void line(std::size_t step, double loss, double tokens_per_s, const std::string& eval_text);
  // A message on its own line, clearing the bar first.
  void message(const std::string& text);
  // Ends the bar's line on a terminal.
  void finish();

 private:
  std::string status(std::size_t step, double loss, double tokens_per_s) const;
  void draw(const std::string& text);

  std::FILE* out_;
  bool terminal_;
  std::size_t total_steps_;
  std::size_t start_step_;
  std::string eval_text_;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_;
  bool bar_shown_ = false;
};

}  // namespace qkv::train
