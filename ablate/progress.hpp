// SweepProgress: what a person watching a sweep sees.
//
// On a terminal, a block of a few lines redrawn in place (at most ten times a second),
// each cut to the terminal's width:
//
//   ablate copy: 12/54 runs done, 2 running, 8.1 steps/s, ETA 6m40s
//     qk=identity seed 2   [#########...........]  340/600
//     qk=frozen seed 1     [##..................]   60/600
//
// The ETA is the steps left (every unfinished run's, the running ones' remainder
// included) over the steps per second measured since the sweep started, all jobs
// together. Anywhere else (a pipe, a log file, CI) nothing is redrawn: one plain line per
// finished run, so a log holds one line per run and nothing in between.
//
//   SweepProgress progress(stdout, is_terminal(stdout), plan.runs.size(), 0, steps_to_train);
//   progress.draw({{"learned seed 1", 120, 600}}, runs_done, steps_done);   // often
//   progress.run_finished("[1/18] learned seed 1: best seq_acc 1.000 ...");
//   progress.finish();
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdio>
#include <string>
#include <vector>

namespace qkv::ablate {

struct RunningView {
  std::string label;   // "qk=identity seed 2"
  std::size_t step = 0;
  std::size_t steps = 0;
};

// "6m40s", "1h02m", "12s".
std::string format_duration(double seconds);

class SweepProgress {
 public:
  // `steps_to_train`: the steps this sweep has ahead of it (all unfinished runs).
  SweepProgress(std::FILE* out, bool terminal, std::string name, std::size_t total_runs,
                std::size_t steps_to_train);

  // Redraws the block on a terminal (throttled); nothing otherwise. `steps_done`: steps
  // trained since the sweep started, the running runs' included.
  void draw(const std::vector<RunningView>& running, std::size_t runs_done,
            std::size_t steps_done);
  // A finished run's line: printed where nothing is redrawn.
  void run_finished(const std::string& line);
  // Clears the block (a terminal), so that what follows starts on a clean line.
  void finish();

 private:
  std::string headline(std::size_t running, std::size_t runs_done, std::size_t steps_done) const;
  std::size_t width() const;

  std::FILE* out_;
  bool terminal_;
  std::string name_;
  std::size_t total_runs_;
  std::size_t steps_to_train_;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point last_draw_{};
  std::size_t lines_shown_ = 0;
};

}  // namespace qkv::ablate
