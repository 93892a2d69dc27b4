// `qkv report RUN_DIR [--sample N] [--importance-samples N]`: writes RUN_DIR/report.html, one
// offline page with the run's curves (loss, token_acc and seq_acc, learning rate and
// gradient norm against step, drawn from metrics.jsonl), its resolved config.yaml, and the
// inspect section of its best.safetensors on N held-out examples (inspect/run_report.hpp).
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>

#include <CLI/CLI.hpp>

#include "app/arg_checks.hpp"
#include "app/cli.hpp"
#include "app/inspect.hpp"
#include "inspect/run_report.hpp"
#include "io/atomic_file.hpp"

namespace qkv::app {

namespace {

struct ReportArgs {
  std::string run_dir;
  std::size_t sample = 4;
  std::size_t importance_samples = 256;
};

void report_command(const ReportArgs& args, std::FILE* out) {
  const std::filesystem::path dir(args.run_dir);
  if (!std::filesystem::is_directory(dir))
    throw std::runtime_error("run folder '" + args.run_dir + "': no such folder");
  const inspect::RunMetrics metrics = inspect::read_metrics((dir / "metrics.jsonl").string());
  const std::filesystem::path config = dir / "config.yaml";
  const std::string config_yaml = std::filesystem::exists(config) ? io::read_file(config.string()) : "";

  const std::filesystem::path best = dir / "best.safetensors";
  std::unique_ptr<inspect::Inspection> inspection;
  std::string note;
  if (std::filesystem::exists(best)) {
    CheckpointInputs inputs;
    inputs.sample = args.sample;
    inputs.importance_samples = args.importance_samples;
    inspection = std::make_unique<inspect::Inspection>(inspect_checkpoint(best.string(), inputs));
    note = std::to_string(args.sample) + " held-out example(s) drawn with the run's seed.";
  } else {
    note = "No best.safetensors yet: the run has not been evaluated.";
  }
  const std::string page = inspect::run_report_html(
      args.run_dir, metrics, config_yaml.empty() ? "(no config.yaml)" : config_yaml,
      inspection.get(), note);
  const std::string path = (dir / "report.html").string();
  io::write_file_atomically(path, page);
  std::fprintf(out, "wrote %s\n", path.c_str());
  std::fflush(out);
}

VerbRun add_report_options(CLI::App& command) {
  auto args = std::make_shared<ReportArgs>();
  command.add_option("run_dir", args->run_dir, "a run folder (metrics.jsonl, config.yaml, best.safetensors)")
      ->required();
  command.add_option("--sample", args->sample, "held-out examples whose attention is drawn")
      ->capture_default_str()
      ->check(sample_count_check());
  command.add_option("--importance-samples", args->importance_samples,
                     "held-out examples for head importance (0: skip it)")
      ->capture_default_str();
  return [args](std::FILE* out) { report_command(*args, out); };
}

}  // namespace

// extern: cli.cpp lists it
extern const Verb report_verb{"report",
                              "Write RUN_DIR/report.html: training curves, config and inspect.",
                              add_report_options};

}  // namespace qkv::app
