// `qkv train CONFIG.yaml [--out DIR] [--set key.path=value ...] [--resume] [--stop-at ACC]`:
// trains the model a config describes into a run folder (default runs/<config name>),
// printing the resolved config, the parameter count and progress (see train/trainer.hpp).
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <CLI/CLI.hpp>

#include "app/cli.hpp"
#include "train/config.hpp"
#include "train/trainer.hpp"

namespace qkv::app {

namespace {

struct TrainArgs {
  std::string config;
  std::string out;
  std::vector<std::string> sets;
  bool resume = false;
  std::optional<double> stop_at;
};

void train_command(const TrainArgs& args, std::FILE* out) {
  train::Config config = train::load_config(args.config, args.sets);
  train::TrainerOptions options;
  options.out_dir = args.out.empty() ? "runs/" + config.name : args.out;
  options.resume = args.resume;
  options.out = out;
  options.stop_at_seq_acc = args.stop_at;
  train::Trainer trainer(std::move(config), options);
  trainer.run();
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
  command.add_option("--stop-at", args->stop_at,
                     "stop once eval seq_acc reaches this value (e.g. 0.99)")
      ->check(CLI::Range(0.0, 1.0));
  return [args](std::FILE* out) { train_command(*args, out); };
}

}  // namespace

extern const Verb train_verb{"train", "Train a model from a config file.", add_train_options};

}  // namespace qkv::app
