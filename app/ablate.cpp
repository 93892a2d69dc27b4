// `qkv ablate CONFIG [--variants v1,v2,...] [--seeds N] [--jobs J] [--out DIR]
// [--set key.path=value ...]`: trains every attention variant × seed of a sweep config
// (ablate/plan.hpp) with the same budget and data, J at a time, into DIR (default
// runs/<config name>-ablation)/<variant>/seed-<s>/, then writes DIR/ablation.md, .csv,
// .json and the learned-against-none maps picture (ablate/table.hpp).
//
// Run again, it trains only what is missing: finished runs are kept, interrupted ones
// resume. Ctrl-C (SIGINT) or SIGTERM stops every running training after its current step
// with its checkpoint saved, prints how far the sweep got and the command that finishes
// it, and exits with 130 or 143 (a second Ctrl-C exits at once).
#include <algorithm>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "ablate/plan.hpp"
#include "ablate/progress.hpp"
#include "ablate/sweep.hpp"
#include "ablate/table.hpp"
#include "app/cli.hpp"
#include "app/shell_word.hpp"
#include "train/communicator.hpp"
#include "train/resources.hpp"
#include "train/stop_signals.hpp"

namespace qkv::app {

namespace {

struct AblateArgs {
  std::string config;
  std::vector<std::string> variants;
  std::optional<std::size_t> seeds;
  std::optional<std::size_t> jobs;
  std::string out;
  std::vector<std::string> sets;
};

std::string plan_line(const ablate::SweepPlan& plan, std::size_t jobs) {
  std::size_t finished = 0, partial = 0;
  for (const ablate::PlannedRun& run : plan.runs) {
    finished += run.state == ablate::RunState::finished ? 1 : 0;
    partial += run.state == ablate::RunState::partial ? 1 : 0;
  }
  std::string variants;
  for (const ablate::Variant& v : plan.variants) variants += (variants.empty() ? "" : ", ") + v.name;
  const auto count = [](std::size_t n, const char* noun) {
    return fmt::format("{} {}{}", n, noun, n == 1 ? "" : "s");
  };
  return fmt::format(
      "# ablate {}: {} ({}) x {} = {} of {} steps into {}/; {} finished, {} to resume, {} to "
      "start; {} at a time\n",
      plan.name, count(plan.variants.size(), "variant"), variants, count(plan.seeds.size(), "seed"),
      count(plan.runs.size(), "run"), plan.steps, plan.out_dir, finished, partial,
      plan.runs.size() - finished - partial, jobs);
}

// The command line that finishes the sweep.
std::string again_command(const AblateArgs& args, const ablate::SweepPlan& plan) {
  std::string command = "qkv ablate " + shell_word(args.config);
  if (!args.variants.empty()) {
    std::string list;
    for (const ablate::Variant& v : plan.variants) list += (list.empty() ? "" : ",") + v.name;
    command += " --variants " + shell_word(list);
  }
  if (args.seeds) command += " --seeds " + std::to_string(*args.seeds);
  command += " --out " + shell_word(plan.out_dir);
  for (const std::string& set : args.sets) command += " --set " + shell_word(set);
  return command;
}

void ablate_command(const AblateArgs& args, std::FILE* out) {
  ablate::SweepRequest request;
  request.config_path = args.config;
  request.sets = args.sets;
  if (!args.variants.empty()) request.variants = args.variants;
  request.seeds = args.seeds;
  request.out_dir = args.out;
  // Under mpirun every rank plans (a bad config stops them all with one message) and
  // trains its share of the runs; rank 0 writes the table.
  train::Communicator& world = train::world();
  ablate::SweepPlan plan;
  world.agree(train::attempt([&] { plan = ablate::plan_sweep(request); }));
  ablate::SweepOptions options;
  options.jobs = args.jobs.value_or(train::available_cores());
  options.out = out;
  if (world.size() > 1) options.communicator = &world;
  std::fputs(plan_line(plan, options.jobs).c_str(), out);
  if (world.size() > 1)
    std::fprintf(out, "# over %zu ranks: the i-th run to train on rank i mod %zu, %zu at a time "
                      "on each\n", world.size(), world.size(), options.jobs);
  std::fflush(out);
  const ablate::SweepOutcome outcome = ablate::run_sweep(plan, options);
  ablate::refresh_states(plan);
  const bool complete = std::all_of(plan.runs.begin(), plan.runs.end(), [](const auto& run) {
    return run.state == ablate::RunState::finished;
  });
  if (!complete) {
    if (outcome.stopped_by == 0)
      throw std::logic_error("the sweep ended with runs unfinished and no signal to stop it");
    std::size_t finished = 0;
    for (const ablate::PlannedRun& run : plan.runs)
      finished += run.state == ablate::RunState::finished ? 1 : 0;
    throw VerbExit{128 + outcome.stopped_by,
                   fmt::format("stopped by {} with {} of {} runs finished (the others saved "
                               "where they stopped); finish the sweep with: {}",
                               train::StopSignals::name(outcome.stopped_by), finished,
                               plan.runs.size(), again_command(args, plan))};
  }
  if (world.rank() != 0) return;
  const ablate::AblationTable table = ablate::read_table(plan);
  const std::vector<std::string> written = ablate::write_tables(plan, table);
  std::fprintf(out, "# done: %zu runs trained now (%zu resumed), %zu were finished before; %s\n",
               outcome.trained, outcome.resumed, outcome.finished_before,
               ablate::format_duration(outcome.seconds).c_str());
  std::fputs(("\n" + ablate::table_markdown(table, "") + "\n").c_str(), out);
  std::string files;
  for (const std::string& path : written) files += (files.empty() ? "" : ", ") + path;
  std::fprintf(out, "wrote %s\n", files.c_str());
}

// --variants takes one comma-separated list (names hold no comma) or repeats.
VerbRun add_ablate_options(CLI::App& command) {
  auto args = std::make_shared<AblateArgs>();
  command.add_option("config", args->config, "a sweep config (configs/ablations/*.yaml)")
      ->required()
      ->check(CLI::ExistingFile);
  command.add_option("--variants", args->variants,
                     "the variants to train, e.g. learned,none,qk=identity (default: the "
                     "config's ablate.variants)")
      ->delimiter(',')
      ->type_name("V1,V2,...");
  command.add_option("--seeds", args->seeds, "runs per variant, seeds seed, seed+1, ...")
      ->check(CLI::Range(std::size_t{1}, ablate::kMaxSeeds));
  command.add_option("--jobs", args->jobs,
                     "trainings at once (default: the cores this process may use)")
      ->check(CLI::Range(std::size_t{1}, train::available_cores()));
  command.add_option("--out", args->out, "the sweep's folder (default: runs/<name>-ablation)");
  command.add_option("--set", args->sets,
                     "override a config value in every run, e.g. --set train.steps=300 "
                     "(repeatable)")
      ->type_name("KEY.PATH=VALUE")
      ->allow_extra_args(false);
  return [args](std::FILE* out) { ablate_command(*args, out); };
}

}  // namespace

extern const Verb ablate_verb{"ablate",
                              "Train every attention variant x seed of a sweep config and "
                              "tabulate them.",
                              add_ablate_options};

}  // namespace qkv::app
