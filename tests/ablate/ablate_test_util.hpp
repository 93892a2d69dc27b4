// Helpers for the sweep tests: a tiny sweep config (each run a fraction of a second), a
// sweep run in-process or in a forked child, and comparisons of run folders that leave
// out what depends on the clock (elapsed_s, tokens_per_s).
#pragma once

#include <filesystem>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "ablate/plan.hpp"
#include "ablate/sweep.hpp"
#include "ablate/table.hpp"
#include "io/checkpoint.hpp"
#include "tests/run_util.hpp"

namespace qkv::test {

// Two variants × two seeds of a copy model small enough that a run takes well under a
// second, but long enough (`steps`) that a signal can land in the middle of one.
inline std::string tiny_sweep_config(std::size_t steps = 40) {
  return "name: tiny\nseed: 1\n"
         "task: {type: copy, symbols: 4, min_len: 2, max_len: 4}\n"
         "model: {d_model: 16, heads: 2, layers: 1, d_ff: 32}\n"
         "optim: {type: adamw, lr: 0.01, schedule: {type: cosine, warmup_steps: 5}}\n"
         "train: {steps: " + std::to_string(steps) +
         ", batch_size: 8, eval_every: 10, eval_samples: 32, log_every: 5}\n"
         "ablate: {variants: [learned, none], seeds: 2, target: 0.3}\n";
}

// Plans, runs (silently) and tabulates a sweep; returns the plan as it ended.
inline ablate::SweepPlan run_tiny_sweep(const std::string& config, const std::string& out,
                                        std::size_t jobs) {
  ablate::SweepRequest request;
  request.config_path = config;
  request.out_dir = out;
  ablate::SweepPlan plan = ablate::plan_sweep(request);
  ablate::SweepOptions options;
  options.jobs = jobs;
  options.out = nullptr;
  const ablate::SweepOutcome outcome = ablate::run_sweep(plan, options);
  REQUIRE(outcome.stopped_by == 0);
  ablate::refresh_states(plan);
  ablate::write_tables(plan, ablate::read_table(plan));
  return plan;
}

// A metrics.jsonl without its clock fields, one JSON text per line; `split`: only the
// lines of that split ("": all).
inline std::vector<std::string> metrics_without_clock(const std::string& path,
                                                      const std::string& split = "") {
  std::vector<std::string> lines;
  for (nlohmann::json line : read_jsonl(path)) {
    if (!split.empty() && line["split"] != split) continue;
    line.erase("elapsed_s");
    line.erase("tokens_per_s");
    lines.push_back(line.dump());
  }
  return lines;
}

// The sweep's three tables with the lines that hold training times removed.
inline std::map<std::string, std::string> tables_without_clock(const std::string& out) {
  std::map<std::string, std::string> tables;
  for (const char* file : {"ablation.md", "ablation.csv", "ablation.json"}) {
    std::string kept;
    std::istringstream text(read_text(out + "/" + file));
    for (std::string line; std::getline(text, line);)
      if (line.find("elapsed_s") == std::string::npos &&
          line.rfind("Training time:", 0) == std::string::npos)
        kept += line + "\n";
    tables[file] = kept;
  }
  return tables;
}

// Every run of two sweeps: the same metrics (clock aside) and the same weights, bit for
// bit. `split`: compare only that split's lines. (A run stopped by a signal writes a train
// line at the step it stopped at, and its resumed part's first line covers the rest of
// that window: its eval lines and weights are an uninterrupted run's, its train lines are
// windowed differently.)
inline void check_same_runs(const ablate::SweepPlan& a, const ablate::SweepPlan& b,
                            const std::string& split = "") {
  REQUIRE(a.runs.size() == b.runs.size());
  for (std::size_t i = 0; i < a.runs.size(); ++i) {
    CAPTURE(a.runs[i].dir);
    CHECK(metrics_without_clock(a.runs[i].dir + "/metrics.jsonl", split) ==
          metrics_without_clock(b.runs[i].dir + "/metrics.jsonl", split));
    const io::Checkpoint x = io::load_checkpoint(a.runs[i].dir + "/last.safetensors");
    const io::Checkpoint y = io::load_checkpoint(b.runs[i].dir + "/last.safetensors");
    REQUIRE(x.weights.size() == y.weights.size());
    for (const auto& [name, tensor] : x.weights) {
      CAPTURE(name);
      REQUIRE(y.weights.count(name) == 1);
      CHECK(y.weights.at(name).to_vector() == tensor.to_vector());
    }
  }
}

}  // namespace qkv::test
