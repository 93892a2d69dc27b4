// Progress of a training run for a person watching it.
//
// On a terminal: one self-redrawing line (bar, step, loss, last eval accuracy, tokens/s,
// elapsed and ETA), cut to the terminal's width so it never wraps, and redrawn at most ten
// times a second so drawing never shows in the step time. Anywhere else (a log file, a
// pipe, CI): one plain line per evaluation, nothing in between, so logs stay readable.
//
//   Progress progress(stdout, is_terminal(stdout), 5000, 0);
//   for (...) {
//     progress.update(step, loss, tokens_per_s);
//     if (evaluated) progress.evaluated(step, loss, tokens_per_s, result);
//   }
//   progress.finish();
//
// Messages from elsewhere ("reached the target") go through message() so they don't
// tangle with the bar.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdio>
#include <optional>
#include <string>

#include "train/evaluate.hpp"

namespace qkv::train {

bool is_terminal(std::FILE* stream);

class Progress {
 public:
  // Steps run from start_step (0, or the step a resumed run continues from) to total_steps.
  Progress(std::FILE* out, bool terminal, std::size_t total_steps, std::size_t start_step);

  // After each training step: redraws the bar on a terminal (throttled), nothing otherwise.
  void update(std::size_t step, double loss, double tokens_per_s);
  // After an evaluation: the bar with the new figures, or a plain line.
  void evaluated(std::size_t step, double loss, double tokens_per_s, const EvalResult& eval);
  // A message on its own line, clearing the bar first.
  void message(const std::string& text);
  // Ends the bar's line on a terminal.
  void finish();

 private:
  void draw(std::size_t step, double loss, double tokens_per_s);
  double elapsed() const;
  double eta(std::size_t step) const;

  std::FILE* out_;
  bool terminal_;
  std::size_t total_steps_;
  std::size_t start_step_;
  std::optional<EvalResult> eval_;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_;
  bool bar_shown_ = false;
};

}  // namespace qkv::train
