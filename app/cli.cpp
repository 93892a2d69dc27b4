// The qkv command's verbs and their options (see cli.hpp).
#include "app/cli.hpp"

#include <memory>
#include <optional>
#include <sstream>
#include <stdexcept>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "core/blas.hpp"
#include "layers/build_model.hpp"
#include "strict_yaml/config_node.hpp"
#include "io/checkpoint.hpp"
#include "train/config.hpp"
#include "train/evaluate.hpp"
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

struct EvalArgs {
  std::string checkpoint;
  std::optional<std::size_t> samples;
  std::string data;
  std::optional<std::uint64_t> seed;
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

void eval_command(const EvalArgs& args, std::FILE* out) {
  const io::Checkpoint checkpoint = io::load_checkpoint(args.checkpoint);
  const train::Config config = train::parse_config(checkpoint.config_yaml, args.checkpoint + " (its config)", {},
                                     checkpoint.task_state);
  core::set_blas_threads(static_cast<int>(config.train.threads));
  const std::unique_ptr<tasks::Task> task =
      tasks::make_task(config.task, config.train.loss_on, checkpoint.task_state);
  core::Rng init_rng(config.seed);  // the weights are replaced by the checkpoint's
  auto model = layers::build_model(ConfigNode(config.model, "model", args.checkpoint),
                                   task->vocab_size(), task->max_seq_len(), init_rng);
  try {
    model->load_state(checkpoint.weights);
  } catch (const std::invalid_argument& error) {
    throw std::runtime_error("checkpoint '" + args.checkpoint + "': " + error.what());
  }

  const std::vector<tasks::Example> examples =
      args.data.empty()
          ? task->eval_examples(args.samples.value_or(config.train.eval_samples),
                                args.seed.value_or(config.seed))
          : task->read_examples(args.data);
  if (examples.empty()) throw std::runtime_error("no examples to evaluate in '" + args.data + "'");
  const train::EvalResult result = train::evaluate(*model, *task, train::make_eval_batches(*task, examples));

  nlohmann::ordered_json line = {{"loss", result.loss},
                                 {"token_acc", result.token_acc},
                                 {"seq_acc", result.seq_acc},
                                 {"samples", result.samples}};
  if (!result.groups.empty()) {
    nlohmann::ordered_json groups = nlohmann::ordered_json::object();
    for (const train::GroupResult& g : result.groups)
      groups[g.name] = {{"token_acc", g.token_acc}, {"seq_acc", g.seq_acc}, {"samples", g.samples}};
    line["groups"] = groups;
  }
  std::fprintf(out, "%s\n", line.dump().c_str());
  std::fflush(out);
}

}  // namespace

int run_cli(const std::vector<std::string>& args, std::FILE* out, std::FILE* err) {
  CLI::App app{"qkv: train a tiny transformer from a YAML config and watch it learn Wq/Wk/Wv.",
               "qkv"};
  app.set_version_flag("--version", "qkv 0.1.0");
  app.require_subcommand(1);
  app.failure_message([](const CLI::App*, const CLI::Error& error) {
    return std::string("qkv: error: ") + error.what() + " (see --help)\n";
  });

  TrainArgs train;
  CLI::App* train_app = app.add_subcommand("train", "Train a model from a config file.");
  train_app->add_option("config", train.config, "the run's YAML config")
      ->required()
      ->check(CLI::ExistingFile);
  train_app->add_option("--out", train.out, "the run folder (default: runs/<config name>)");
  train_app->add_option("--set", train.sets,
                        "override a config value, e.g. --set optim.lr=3e-4 (repeatable)")
      ->type_name("KEY.PATH=VALUE")
      ->allow_extra_args(false);
  train_app->add_flag("--resume", train.resume, "continue from the run folder's last.safetensors");
  train_app->add_option("--stop-at", train.stop_at,
                        "stop once eval seq_acc reaches this value (e.g. 0.99)")
      ->check(CLI::Range(0.0, 1.0));

  EvalArgs eval;
  CLI::App* eval_app = app.add_subcommand(
      "eval", "Evaluate a checkpoint; prints one JSON line (loss, token_acc, seq_acc, samples).");
  eval_app->add_option("checkpoint", eval.checkpoint, "a .safetensors checkpoint")
      ->required()
      ->check(CLI::ExistingFile);
  CLI::Option* samples = eval_app->add_option("--samples", eval.samples,
                       "held-out examples to generate (default: the config's eval_samples)")
      ->check(CLI::PositiveNumber);
  CLI::Option* data = eval_app->add_option("--data", eval.data,
                       "evaluate the examples in this file instead (prompt TAB answer per line)")
      ->check(CLI::ExistingFile);
  CLI::Option* seed =
      eval_app->add_option("--seed", eval.seed, "seed of the generated examples (default: the run's)");
  data->excludes(samples)->excludes(seed);

  // CLI11 would call an unknown verb a missing subcommand; name it, with a suggestion.
  if (args.size() > 1 && !args[1].empty() && args[1][0] != '-' && args[1] != "train" &&
      args[1] != "eval") {
    std::string message = "qkv: error: unknown command '" + args[1] + "'";
    const std::string suggestion = closest_match(args[1], {"train", "eval"});
    if (!suggestion.empty()) message += "; did you mean '" + suggestion + "'?";
    std::fprintf(err, "%s (commands: train, eval; see qkv --help)\n", message.c_str());
    return 2;
  }

  std::ostringstream help_out;
  std::ostringstream help_err;
  try {
    // CLI11 takes the arguments without the program name, last first.
    std::vector<std::string> reversed(args.rbegin(), args.rend());
    if (!reversed.empty()) reversed.pop_back();
    app.parse(reversed);
  } catch (const CLI::ParseError& error) {
    const int code = app.exit(error, help_out, help_err);
    std::fputs(help_out.str().c_str(), out);
    std::fputs(help_err.str().c_str(), err);
    return code;
  }

  try {
    if (app.got_subcommand(train_app)) train_command(train, out);
    if (app.got_subcommand(eval_app)) eval_command(eval, out);
  } catch (const std::exception& error) {
    std::fprintf(err, "qkv: error: %s\n", error.what());
    return 1;
  }
  return 0;
}

}  // namespace qkv::app
