// The ablation table: every finished run of a sweep read back and summed up per variant,
// written as ablation.md (for people, linking the maps picture), ablation.csv (for
// spreadsheets and plots) and ablation.json (every run's own figures too) in the sweep's
// folder.
//
// Per run, from its metrics.jsonl (eval lines only, as written: nothing is recomputed):
// the best and the final held-out seq_acc (final: the eval line of the last step), the
// first step whose seq_acc reaches the target, and the final held-out loss; from its
// last.safetensors (through inspect): the learned attention parameters
// (Transformer::attention_parameter_count) and the mean head-to-head QK similarity
// (Inspection::mean_qk_similarity: the cosine of two heads' W_QK, averaged over layers;
// 1 when every head scores alike, as with raw dot products; none with one head).
//
// Per variant: mean ± sd over seeds (sd: the sample standard deviation, n - 1; none for
// one seed) of the best and final seq_acc, the median step to the target over the seeds
// that reached it and how many did ("450 (3/3)", "— (0/3)"), the mean final loss and the
// mean QK similarity. Nothing in the three files depends on when or how fast the runs
// ran, except ablation.md's last line and each run's `elapsed_s` in ablation.json.
//
//   AblationTable table = read_table(plan);   // every run must be finished
//   write_tables(plan, table);                  // ablation.md, .csv, .json, ablation_maps.svg
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "ablate/plan.hpp"

namespace qkv::ablate {

struct RunResult {
  std::uint64_t seed = 0;
  double best_seq_acc = 0;
  double final_seq_acc = 0;
  double final_loss = 0;                        // held-out, at the last step
  std::optional<std::size_t> steps_to_target;   // the first eval step reaching it
  std::optional<double> qk_similarity;          // none with one head per layer
  std::size_t attention_parameters = 0;
  double elapsed_s = 0;                         // the run's training time
};

struct MeanSd {
  double mean = 0;
  std::optional<double> sd;  // none for one value
};

struct VariantRow {
  std::string variant;
  std::size_t attention_parameters = 0;
  std::vector<RunResult> runs;  // in seed order
  MeanSd best_seq_acc, final_seq_acc;
  std::optional<double> median_steps_to_target;  // over the seeds that reached it
  std::size_t reached = 0;                       // seeds that reached it
  double final_loss = 0;                         // mean
  std::optional<double> qk_similarity;           // mean; none if any run has none
};

struct AblationTable {
  std::string name;
  std::string config_path;
  double target = 0;
  std::size_t steps = 0;
  std::size_t eval_samples = 0;
  std::vector<std::uint64_t> seeds;
  std::vector<VariantRow> rows;  // in the plan's variant order
};

// One run folder's figures. std::runtime_error naming the folder when its metrics.jsonl
// has no eval line or its checkpoint does not load.
RunResult read_run(const std::string& dir, std::uint64_t seed, double target);

// Every run of the plan; std::runtime_error naming the first run that is not finished.
AblationTable read_table(const SweepPlan& plan);

MeanSd mean_sd(const std::vector<double>& values);
std::optional<double> median(std::vector<double> values);

// `figure`: the maps picture's file name beside ablation.md ("" for none).
std::string table_markdown(const AblationTable& table, const std::string& figure);
std::string table_csv(const AblationTable& table);
std::string table_json(const AblationTable& table);

// Writes the three tables and, when the plan has both `learned` and `none`, the maps
// picture (maps_figure.hpp) into plan.out_dir; returns the paths written.
std::vector<std::string> write_tables(const SweepPlan& plan, const AblationTable& table);

}  // namespace qkv::ablate
