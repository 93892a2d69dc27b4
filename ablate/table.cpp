// The ablation table read from the runs and written as Markdown, CSV and JSON (see
// table.hpp).
#include "ablate/table.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <stdexcept>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "ablate/maps_figure.hpp"
#include "inspect/inspection.hpp"
#include "inspect/load_model.hpp"
#include "io/atomic_file.hpp"
#include "io/checkpoint.hpp"

namespace qkv::ablate {

namespace {

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;

constexpr const char* kFigure = "ablation_maps.svg";

struct EvalLine {
  std::size_t step = 0;
  double loss = 0, seq_acc = 0;
};

std::vector<EvalLine> eval_lines(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read '" + path + "'");
  std::vector<EvalLine> lines;
  for (std::string text; std::getline(in, text);) {
    const json line = json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (!line.is_object() || line.value("split", "") != "eval") continue;
    lines.push_back({line.at("step").get<std::size_t>(), line.at("loss").get<double>(),
                     line.at("seq_acc").get<double>()});
  }
  if (lines.empty()) throw std::runtime_error("'" + path + "' has no eval line");
  return lines;
}

// The model's figures from its last checkpoint.
void read_checkpoint(const std::string& path, RunResult& result) {
  inspect::LoadedModel loaded = inspect::load_model(path);
  result.attention_parameters = loaded.model->attention_parameter_count();
  const inspect::Inspection inspection =
      inspect::inspect_model(*loaded.model, *loaded.task, inspect::InspectOptions{});
  result.qk_similarity = inspection.mean_qk_similarity;
}

VariantRow summarize(const std::string& variant, std::vector<RunResult> runs) {
  VariantRow row;
  row.variant = variant;
  row.attention_parameters = runs.front().attention_parameters;
  std::vector<double> best, final, steps, loss, qk;
  bool all_qk = true;
  for (const RunResult& r : runs) {
    best.push_back(r.best_seq_acc);
    final.push_back(r.final_seq_acc);
    loss.push_back(r.final_loss);
    if (r.steps_to_target) steps.push_back(static_cast<double>(*r.steps_to_target));
    if (r.qk_similarity) qk.push_back(*r.qk_similarity);
    all_qk = all_qk && r.qk_similarity.has_value();
  }
  row.best_seq_acc = mean_sd(best);
  row.final_seq_acc = mean_sd(final);
  row.final_loss = mean_sd(loss).mean;
  row.median_steps_to_target = median(steps);
  row.reached = steps.size();
  if (all_qk) row.qk_similarity = mean_sd(qk).mean;
  row.runs = std::move(runs);
  return row;
}

std::string seq_acc_cell(const MeanSd& v) {
  return v.sd ? fmt::format("{:.3f} ± {:.3f}", v.mean, *v.sd) : fmt::format("{:.3f}", v.mean);
}

std::string steps_cell(const VariantRow& row) {
  const std::string seeds = fmt::format("({}/{})", row.reached, row.runs.size());
  if (!row.median_steps_to_target) return "— " + seeds;
  const double m = *row.median_steps_to_target;
  return (m == std::floor(m) ? fmt::format("{:.0f}", m) : fmt::format("{:.1f}", m)) + " " + seeds;
}

std::string optional_number(const std::optional<double>& v) { return v ? fmt::format("{}", *v) : ""; }

json optional_json(const std::optional<double>& v) { return v ? json(*v) : json(nullptr); }

double total_seconds(const AblationTable& table) {
  double total = 0;
  for (const VariantRow& row : table.rows)
    for (const RunResult& r : row.runs) total += r.elapsed_s;
  return total;
}

}  // namespace

MeanSd mean_sd(const std::vector<double>& values) {
  MeanSd out;
  if (values.empty()) return out;
  double sum = 0;
  for (double v : values) sum += v;
  out.mean = sum / static_cast<double>(values.size());
  if (values.size() < 2) return out;
  double squares = 0;
  for (double v : values) squares += (v - out.mean) * (v - out.mean);
  out.sd = std::sqrt(squares / static_cast<double>(values.size() - 1));
  return out;
}

std::optional<double> median(std::vector<double> values) {
  if (values.empty()) return std::nullopt;
  std::sort(values.begin(), values.end());
  const std::size_t n = values.size();
  return n % 2 == 1 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

RunResult read_run(const std::string& dir, std::uint64_t seed, double target) {
  RunResult result;
  result.seed = seed;
  const std::vector<EvalLine> lines = eval_lines((fs::path(dir) / "metrics.jsonl").string());
  for (const EvalLine& line : lines) {
    result.best_seq_acc = std::max(result.best_seq_acc, line.seq_acc);
    if (!result.steps_to_target && line.seq_acc >= target) result.steps_to_target = line.step;
  }
  result.final_seq_acc = lines.back().seq_acc;
  result.final_loss = lines.back().loss;
  const std::string last = (fs::path(dir) / "last.safetensors").string();
  read_checkpoint(last, result);
  result.elapsed_s = io::load_checkpoint(last).elapsed_s;
  return result;
}

AblationTable read_table(const SweepPlan& plan) {
  AblationTable table;
  table.name = plan.name;
  table.config_path = plan.config_path;
  table.target = plan.target;
  table.steps = plan.steps;
  table.eval_samples = plan.eval_samples;
  table.seeds = plan.seeds;
  for (const Variant& variant : plan.variants) {
    std::vector<RunResult> runs;
    for (const PlannedRun& run : plan.runs) {
      if (run.variant.name != variant.name) continue;
      if (run.state != RunState::finished)
        throw std::runtime_error(run.label() + " (" + run.dir + ") is not finished (step " +
                                 std::to_string(run.step) + " of " + std::to_string(plan.steps) +
                                 "): the table needs every run");
      runs.push_back(read_run(run.dir, run.seed, plan.target));
    }
    table.rows.push_back(summarize(variant.name, std::move(runs)));
  }
  return table;
}

std::string table_markdown(const AblationTable& t, const std::string& figure) {
  std::string seeds;
  for (const std::uint64_t s : t.seeds) seeds += (seeds.empty() ? "" : ", ") + std::to_string(s);
  std::string md = fmt::format(
      "# Ablation: {} ({})\n\n{} variants × {} seeds ({}), {} steps each; held-out seq_acc on "
      "{} examples; target seq_acc {}.\n\n",
      t.name, t.config_path, t.rows.size(), t.seeds.size(), seeds, t.steps, t.eval_samples,
      t.target);
  md += fmt::format(
      "| variant | learned attention parameters | best seq_acc | final seq_acc | steps to {} | "
      "final held-out loss | QK head similarity |\n|---|---:|---:|---:|---:|---:|---:|\n",
      t.target);
  for (const VariantRow& row : t.rows)
    md += fmt::format("| `{}` | {} | {} | {} | {} | {:.4f} | {} |\n", row.variant,
                      row.attention_parameters, seq_acc_cell(row.best_seq_acc),
                      seq_acc_cell(row.final_seq_acc), steps_cell(row), row.final_loss,
                      row.qk_similarity ? fmt::format("{:.3f}", *row.qk_similarity) : "—");
  md += "\nMean ± sd over seeds. Steps to the target: the median over the seeds that reached "
        "it (at an evaluation), and how many did. QK head similarity: the cosine of two "
        "heads' W_QK, averaged over pairs and layers, of the final model (1: every head "
        "scores alike, as raw dot products do; — with one head).\n";
  if (!figure.empty())
    md += fmt::format("\nThe `learned` and `none` models (seed {}) on the same held-out input:\n\n"
                      "![attention maps of the learned and the none model]({})\n",
                      t.seeds.front(), figure);
  std::size_t runs = 0;
  for (const VariantRow& row : t.rows) runs += row.runs.size();
  md += fmt::format("\nTraining time: {:.0f} s over {} runs (one thread each).\n",
                    total_seconds(t), runs);
  return md;
}

std::string table_csv(const AblationTable& t) {
  std::string csv =
      "variant,attention_parameters,best_seq_acc_mean,best_seq_acc_sd,final_seq_acc_mean,"
      "final_seq_acc_sd,steps_to_target_median,seeds_reached,seeds,final_loss_mean,"
      "qk_similarity_mean\n";
  for (const VariantRow& row : t.rows)
    csv += fmt::format("{},{},{},{},{},{},{},{},{},{},{}\n", row.variant, row.attention_parameters,
                       row.best_seq_acc.mean, optional_number(row.best_seq_acc.sd),
                       row.final_seq_acc.mean, optional_number(row.final_seq_acc.sd),
                       optional_number(row.median_steps_to_target), row.reached, row.runs.size(),
                       row.final_loss, optional_number(row.qk_similarity));
  return csv;
}

std::string table_json(const AblationTable& t) {
  json rows = json::array();
  for (const VariantRow& row : t.rows) {
    json runs = json::array();
    for (const RunResult& r : row.runs)
      runs.push_back({{"seed", r.seed},
                      {"best_seq_acc", r.best_seq_acc},
                      {"final_seq_acc", r.final_seq_acc},
                      {"final_loss", r.final_loss},
                      {"steps_to_target", r.steps_to_target ? json(*r.steps_to_target) : json(nullptr)},
                      {"qk_similarity", optional_json(r.qk_similarity)},
                      {"attention_parameters", r.attention_parameters},
                      {"elapsed_s", r.elapsed_s}});
    rows.push_back({{"variant", row.variant},
                    {"attention_parameters", row.attention_parameters},
                    {"best_seq_acc", {{"mean", row.best_seq_acc.mean}, {"sd", optional_json(row.best_seq_acc.sd)}}},
                    {"final_seq_acc", {{"mean", row.final_seq_acc.mean}, {"sd", optional_json(row.final_seq_acc.sd)}}},
                    {"steps_to_target", {{"median", optional_json(row.median_steps_to_target)},
                                         {"reached", row.reached}, {"seeds", row.runs.size()}}},
                    {"final_loss", row.final_loss},
                    {"qk_similarity", optional_json(row.qk_similarity)},
                    {"runs", runs}});
  }
  const json doc = {{"name", t.name},   {"config", t.config_path}, {"target", t.target},
                    {"steps", t.steps}, {"eval_samples", t.eval_samples},
                    {"seeds", t.seeds}, {"variants", rows}};
  return doc.dump(2) + "\n";
}

std::vector<std::string> write_tables(const SweepPlan& plan, const AblationTable& table) {
  fs::create_directories(plan.out_dir);
  const fs::path out(plan.out_dir);
  std::vector<std::string> written;
  const auto write = [&](const std::string& file, const std::string& text) {
    io::write_file_atomically((out / file).string(), text);
    written.push_back((out / file).string());
  };
  const auto has = [&](const char* name) {
    return std::any_of(plan.variants.begin(), plan.variants.end(),
                       [&](const Variant& v) { return v.name == name; });
  };
  std::string figure;
  if (has("learned") && has("none")) {
    // The first seed's runs (the plan is variant-major, so the first run of a variant).
    const auto checkpoint = [&](const char* variant) {
      const auto run = std::find_if(plan.runs.begin(), plan.runs.end(),
                                    [&](const PlannedRun& r) { return r.variant.name == variant; });
      return (fs::path(run->dir) / "last.safetensors").string();
    };
    write(kFigure, maps_figure({checkpoint("learned"), "learned: Wq, Wk, Wv and Wo learned"},
                               {checkpoint("none"), "none: raw dot products (Q = K = V = x, no Wo)"}));
    figure = kFigure;
  }
  write("ablation.md", table_markdown(table, figure));
  write("ablation.csv", table_csv(table));
  write("ablation.json", table_json(table));
  return written;
}

}  // namespace qkv::ablate
