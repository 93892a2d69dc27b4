// `qkv train CONFIG.yaml [--out DIR] [--set key.path=value ...] [--resume [--force]]
// [--stop-at ACC]`: trains the model a config describes into a run folder (default
// runs/<config name>), printing the resolved config, the parameter count and progress (see
// train/trainer.hpp).
//
// Ctrl-C (SIGINT) or SIGTERM stops the run after its current step: last.safetensors is
// written, the command prints where it is and the command line that continues it, and
// exits with 130 or 143 (a second Ctrl-C exits at once).
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <CLI/CLI.hpp>

#include "app/arg_checks.hpp"
#include "app/cli.hpp"
#include "app/shell_word.hpp"
#include "train/communicator.hpp"
#include "train/config.hpp"
#include "train/stop_signals.hpp"
#include "train/trainer.hpp"

namespace qkv::app {

namespace {

struct TrainArgs {
  std::string config;
  std::string out;
  std::vector<std::string> sets;
  bool resume = false;
  bool force = false;
  std::optional<double> stop_at;
};

// The command line that continues the run where it stopped.
std::string resume_command(const TrainArgs& args, const std::string& out_dir) {
  std::string command = "qkv train " + shell_word(args.config) + " --out " + shell_word(out_dir);
  for (const std::string& set : args.sets) command += " --set " + shell_word(set);
  return command + " --resume";
}

void train_command(const TrainArgs& args, std::FILE* out) {
  // Under mpirun every rank reads the config: a bad one stops them all with one message.
  train::Communicator& world = train::world();
  train::Config config;
  world.agree(train::attempt([&] {
    if (args.force && !args.resume)
      throw std::invalid_argument("--force applies to --resume only (it continues a run whose "
                                  "task changed)");
    config = train::load_config(args.config, args.sets);
  }));
  train::TrainerOptions options;
  options.out_dir = args.out.empty() ? "runs/" + config.name : args.out;
  options.resume = args.resume;
  options.force = args.force;
  options.out = out;
  options.stop_at_seq_acc = args.stop_at;
  options.stop_on_signals = true;
  options.communicator = &world;
  train::Trainer trainer(std::move(config), options);
  const train::TrainSummary summary = trainer.run();
  if (summary.stopped_by == 0) return;
  throw VerbExit{128 + summary.stopped_by,
                 std::string("stopped by ") + train::StopSignals::name(summary.stopped_by) +
                     " after step " + std::to_string(summary.steps) + ": saved " +
                     options.out_dir + "/last.safetensors; continue with: " +
                     resume_command(args, options.out_dir)};
}

VerbRun add_train_options(CLI::App& command) {
  auto args = std::make_shared<TrainArgs>();
  command.add_option("config", args->config, "the run's YAML config")
      ->required()
      ->check(CLI::ExistingFile);
  command.add_option("--out", args->out, "the run folder (default: runs/<config name>)");
  command.add_option("--set", args->sets,
                     "override a config value, e.g. --set optim.lr=3e-4 (repeatable)")
      ->type_name("KEY.PATH=VALUE")
      ->allow_extra_args(false);
  command.add_flag("--resume", args->resume, "continue from the run folder's last.safetensors");
  command.add_flag("--force", args->force,
                   "with --resume: continue even though the config's task differs from the "
                   "run's (noted in metrics.jsonl)");
  command.add_option("--stop-at", args->stop_at,
                     "stop once eval seq_acc reaches this value (e.g. 0.99)")
      ->check(accuracy_check());
  return [args](std::FILE* out) { train_command(*args, out); };
}

}  // namespace

extern const Verb train_verb{"train", "Train a model from a config file.", add_train_options};

}  // namespace qkv::app
