// `qkv inspect CHECKPOINT [--input "tok tok …" | --sample N] [--out DIR] [--json]`: what each
// head of a trained model computes. Without an input: the weight tables (norms, QK and OV
// circuits, head-to-head similarity). With `--input` (the tokens the model reads, e.g.
// "a b c SEP a b c") or `--sample N` (N held-out task examples): each head's attention map
// as a shaded grid (of the first input), pattern scores over all inputs, and head
// importance (zero and mean ablation on held-out examples). `--out DIR` writes
// attention.json, heads.svg and report.html (json_report.hpp, svg.hpp, html_report.hpp);
// without an input it draws 4 held-out examples, since the pictures need one. `--json`
// prints the tables as JSON instead of text.
#include "app/inspect.hpp"

#include <filesystem>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "app/arg_checks.hpp"
#include "app/cli.hpp"
#include "core/blas.hpp"
#include "inspect/html_report.hpp"
#include "inspect/json_report.hpp"
#include "inspect/load_model.hpp"
#include "inspect/svg.hpp"
#include "inspect/text_report.hpp"
#include "io/atomic_file.hpp"

namespace qkv::app {

namespace {

constexpr std::size_t kPictureSamples = 4;  // --out without an input

// Token names to ids; an unknown name (or PAD) is an error listing the task's tokens, and
// more tokens than the model reads an error naming both counts.
std::vector<tasks::Token> encode_input(const tasks::Task& task, const std::string& text,
                                       std::size_t max_len) {
  const std::vector<std::string>& names = task.token_names();
  std::vector<tasks::Token> ids;
  std::istringstream words(text);
  for (std::string word; words >> word;) {
    tasks::Token id = -1;
    for (std::size_t i = 1; i < names.size(); ++i)  // PAD (0) is never typed
      if (names[i] == word) id = static_cast<tasks::Token>(i);
    if (id < 0) {
      std::string known;
      for (std::size_t i = 1; i < names.size(); ++i) known += (i > 1 ? " " : "") + names[i];
      throw std::invalid_argument("--input: unknown token '" + word + "' (the " + task.name() +
                                  " task's tokens: " + known + ")");
    }
    ids.push_back(id);
  }
  if (ids.empty()) throw std::invalid_argument("--input: no tokens given");
  if (ids.size() > max_len)
    throw std::invalid_argument("--input has " + std::to_string(ids.size()) +
                                " tokens; the model reads at most " + std::to_string(max_len));
  return ids;
}

struct InspectArgs {
  std::string checkpoint;
  std::string input;
  std::optional<std::size_t> sample;
  std::optional<std::uint64_t> seed;
  std::size_t importance_samples = 256;
  std::string out_dir;
  bool json = false;
};

void write_pictures(const inspect::Inspection& inspection, const std::string& dir, std::FILE* out) {
  std::filesystem::create_directories(dir);
  const std::filesystem::path d(dir);
  io::write_file_atomically((d / "attention.json").string(), inspect::attention_json(inspection));
  io::write_file_atomically((d / "heads.svg").string(),
                            inspect::heads_svg(inspection.samples.front(), inspection.source));
  io::write_file_atomically((d / "report.html").string(), inspect::inspect_html(inspection));
  std::fprintf(out, "wrote %s, %s and %s\n", (d / "attention.json").c_str(),
               (d / "heads.svg").c_str(), (d / "report.html").c_str());
}

void inspect_command(const InspectArgs& args, std::FILE* out) {
  CheckpointInputs inputs;
  inputs.text = args.input;
  inputs.sample = args.sample;
  if (!args.out_dir.empty() && args.input.empty() && !args.sample) inputs.sample = kPictureSamples;
  inputs.seed = args.seed;
  inputs.importance_samples = args.importance_samples;
  const inspect::Inspection inspection = inspect_checkpoint(args.checkpoint, inputs);
  if (args.json) {
    std::fprintf(out, "%s\n", inspect::tables_json(inspection).c_str());
  } else {
    std::fputs(inspect::text_report(inspection).c_str(), out);
  }
  if (!args.out_dir.empty()) write_pictures(inspection, args.out_dir, args.json ? stderr : out);
  std::fflush(out);
}

VerbRun add_inspect_options(CLI::App& command) {
  auto args = std::make_shared<InspectArgs>();
  command.add_option("checkpoint", args->checkpoint, "a .safetensors checkpoint")->required();
  CLI::Option* input = command.add_option(
      "--input", args->input, "tokens the model reads, space-separated (e.g. \"a b c SEP a b c\")");
  CLI::Option* sample = command.add_option("--sample", args->sample, "inspect N held-out task examples")
                            ->check(sample_count_check());
  input->excludes(sample);
  command.add_option("--seed", args->seed, "seed of the sampled examples (default: the run's)")
      ->check(seed_check());
  command.add_option("--importance-samples", args->importance_samples,
                     "held-out examples for head importance (0: skip it)")
      ->capture_default_str();
  command.add_option("--out", args->out_dir, "write attention.json, heads.svg and report.html here");
  command.add_flag("--json", args->json, "print the tables as JSON");
  return [args](std::FILE* out) { inspect_command(*args, out); };
}

}  // namespace

inspect::Inspection inspect_checkpoint(const std::string& path, const CheckpointInputs& inputs) {
  if (std::filesystem::is_directory(path))
    throw std::runtime_error("checkpoint '" + path + "' is a folder, not a .safetensors file");
  if (!std::filesystem::exists(path)) throw std::runtime_error("checkpoint '" + path + "': no such file");
  const inspect::LoadedModel loaded = inspect::load_model(path);
  core::set_blas_threads(static_cast<int>(loaded.config.train.threads));
  inspect::InspectOptions options;
  options.source = path;
  options.seed = inputs.seed.value_or(loaded.config.seed);
  if (!inputs.text.empty()) options.inputs.push_back(encode_input(*loaded.task, inputs.text, loaded.model->max_len()));
  if (inputs.sample)
    for (const tasks::Example& e : loaded.task->eval_examples(*inputs.sample, options.seed))
      options.inputs.push_back(inspect::model_input(*loaded.task, e));
  if (!options.inputs.empty()) options.importance_samples = inputs.importance_samples;
  return inspect::inspect_model(*loaded.model, *loaded.task, options);
}

// extern: cli.cpp lists it
extern const Verb inspect_verb{
    "inspect", "Show what each head computes: weights, attention maps, pattern scores, importance.",
    add_inspect_options};

}  // namespace qkv::app
