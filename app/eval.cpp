// `qkv eval CHECKPOINT [--samples N] [--data FILE] [--seed S] [--show]`: rebuilds a
// checkpoint's model from the config saved in it (through the layer registry, so a program
// that registered its own layers evaluates their checkpoints too) and prints one JSON line:
// {"loss":…,"token_acc":…,"seq_acc":…,"samples":…} (and "groups" for tasks that have them).
//
// --show first prints one line per example: its prompt, its target and the model's
// prediction, marked ok or WRONG, and with --data the file and line it came from:
//
//   examples.txt:2: WRONG  prompt: c d e | target: c d e | predicted: c d d
//
// The prediction is greedy generation (train/generate.hpp), what `qkv sample` answers, not
// the teacher-forced argmax evaluate() scores: after a first wrong token, the teacher-forced
// predictions answer prefixes the model never wrote. The marks are the same either way: an
// answer is generated exactly (EOS included) when every teacher-forced position is right,
// so the WRONG lines are the examples that seq_acc counts wrong.
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "app/arg_checks.hpp"
#include "app/cli.hpp"
#include "core/blas.hpp"
#include "inspect/load_model.hpp"
#include "layers/build_model.hpp"
#include "train/config.hpp"
#include "train/evaluate.hpp"
#include "train/generate.hpp"

namespace qkv::app {

namespace {

struct EvalArgs {
  std::string checkpoint;
  std::optional<std::size_t> samples;
  std::string data;
  std::optional<std::uint64_t> seed;
  bool show = false;
};

// One line per example: where it came from, ok or WRONG, prompt, target, prediction.
void show_examples(layers::Transformer& model, const tasks::Task& task,
                   const std::vector<tasks::Example>& examples, const std::string& data,
                   std::FILE* out) {
  core::Rng unused(0);  // greedy generation draws nothing
  for (const tasks::Example& example : examples) {
    const train::Generation g =
        train::generate(model, task, example.prompt, train::GenerateOptions{}, unused);
    const bool right = g.ended && g.answer == example.answer;
    std::string line = data.empty() ? "" : data + ":" + std::to_string(example.line) + ": ";
    line += std::string(right ? "ok   " : "WRONG") + "  prompt: " + task.decode(example.prompt) +
            " | target: " + task.decode(example.answer) +
            " | predicted: " + task.decode(g.answer) + (g.ended ? "" : " [no EOS]");
    if (example.group >= 0) line += " | " + task.group_name() + "=" + std::to_string(example.group);
    std::fprintf(out, "%s\n", line.c_str());
  }
  std::fflush(out);
}

void print_result(const train::EvalResult& result, std::FILE* out) {
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

void eval_command(const EvalArgs& args, std::FILE* out) {
  const inspect::LoadedModel loaded = inspect::load_model(args.checkpoint);
  const train::Config& config = loaded.config;
  const std::unique_ptr<tasks::Task>& task = loaded.task;
  const std::shared_ptr<layers::Transformer>& model = loaded.model;
  core::set_blas_threads(static_cast<int>(config.train.threads));

  const std::vector<tasks::Example> examples =
      args.data.empty()
          ? task->eval_examples(args.samples.value_or(config.train.eval_samples),
                                args.seed.value_or(config.seed))
          : task->read_examples(args.data);
  if (examples.empty()) throw std::runtime_error("no examples to evaluate in '" + args.data + "'");
  if (args.show) show_examples(*model, *task, examples, args.data, out);
  print_result(train::evaluate(*model, *task, train::make_eval_batches(*task, examples)), out);
}

VerbRun add_eval_options(CLI::App& command) {
  auto args = std::make_shared<EvalArgs>();
  command.add_option("checkpoint", args->checkpoint, "a .safetensors checkpoint")
      ->required()
      ->check(CLI::ExistingFile);
  CLI::Option* samples = command.add_option("--samples", args->samples,
                       "held-out examples to generate (default: the config's eval_samples)")
      ->check(sample_count_check());
  CLI::Option* data = command.add_option("--data", args->data,
                       "evaluate the examples in this file instead (prompt TAB answer per line)")
      ->check(CLI::ExistingFile);
  CLI::Option* seed =
      command.add_option("--seed", args->seed, "seed of the generated examples (default: the run's)")
          ->check(seed_check());
  data->excludes(samples)->excludes(seed);
  command.add_flag("--show", args->show,
                   "first print each example: prompt, target, the model's (greedy) answer, "
                   "marked ok or WRONG");
  return [args](std::FILE* out) { eval_command(*args, out); };
}

}  // namespace

extern const Verb eval_verb{
    "eval", "Evaluate a checkpoint; prints one JSON line (loss, token_acc, seq_acc, samples).",
    add_eval_options};

}  // namespace qkv::app
