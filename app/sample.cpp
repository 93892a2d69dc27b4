// `qkv sample CHECKPOINT [--prompt "a c f b"] [--temperature T] [--top-k K] [--max-tokens N]
// [--seed S] [--attention]`: the model's answer to a prompt (train/generate.hpp), greedy
// unless a temperature is given, ended by EOS or max-tokens. It prints the answer's tokens
// on one line, and with --attention, per layer and head, where each generated token's
// position looked: a grid of shades (inspect/text_report.hpp's) whose rows are the
// positions that wrote the answer ("SEP -> a": read SEP, wrote a) and whose columns are the
// tokens read.
//
// Without --prompt it reads prompts from stdin, one per line, until EOF; on a terminal that
// is an interactive session (a "> " prompt, and a bad line is reported without ending it).
// A prompt token the task does not know is an error that lists the task's tokens.
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "app/cli.hpp"
#include "core/blas.hpp"
#include "inspect/attention_maps.hpp"
#include "inspect/load_model.hpp"
#include "inspect/text_report.hpp"
#include "train/generate.hpp"

namespace qkv::app {

namespace {

constexpr std::size_t kMaxLabel = 6;  // longer token names are cut in the grid's labels

struct SampleArgs {
  std::string checkpoint;
  std::optional<std::string> prompt;
  double temperature = 0;
  std::size_t top_k = 0;
  std::size_t max_tokens = 0;
  std::uint64_t seed = 0;
  bool attention = false;
};

std::string label(const std::string& token) { return token.substr(0, kMaxLabel); }

// A number of at least `minimum` (a whole one if `whole`). CLI11's NonNegativeNumber would
// print its range's upper end, the largest double, in 309 digits, and lets -1 through to a
// std::size_t as 2^64 - 1.
CLI::Validator at_least(int minimum, bool whole) {
  const std::string expected =
      std::string(whole ? "a whole number" : "a number") + " of at least " + std::to_string(minimum);
  return CLI::Validator(
      [=](std::string& text) {
        char* end = nullptr;
        const double value = std::strtod(text.c_str(), &end);
        const bool number = end != text.c_str() && *end == '\0' && std::isfinite(value);
        if (number && value >= minimum && (!whole || value == std::floor(value))) return std::string();
        return "expected " + expected + ", found " + text;
      },
      whole ? "INT>=" + std::to_string(minimum) : "NUMBER>=" + std::to_string(minimum));
}

std::string pad_left(const std::string& text, std::size_t width) {
  return std::string(width > text.size() ? width - text.size() : 0, ' ') + text;
}

// The answer line: its tokens, and a note when no EOS ended it.
std::string answer_line(const tasks::Task& task, const train::Generation& g) {
  std::string line = task.decode(g.answer);
  if (!g.ended)
    line += std::string(line.empty() ? "" : "  ") + "[no EOS after " +
            std::to_string(g.answer.size()) + " tokens]";
  return line;
}

// One head's map, the rows of the positions that generated a token only.
std::vector<std::string> generated_rows_grid(const inspect::Matrix& map,
                                             const std::vector<std::string>& read,
                                             const std::vector<std::string>& wrote,
                                             std::size_t first_row) {
  std::vector<std::string> row_labels;
  std::size_t row_width = 0, column_height = 0;
  for (std::size_t j = 0; j < wrote.size(); ++j) {
    row_labels.push_back(label(read[first_row + j]) + " -> " + label(wrote[j]));
    row_width = std::max(row_width, row_labels.back().size());
  }
  for (const std::string& token : read) column_height = std::max(column_height, label(token).size());
  std::vector<std::string> lines;
  // Column labels read downwards, aligned at the bottom, one character per column.
  for (std::size_t k = 0; k < column_height; ++k) {
    std::string line(row_width + 1, ' ');
    for (const std::string& token : read) {
      const std::string name = label(token);
      const std::size_t start = column_height - name.size();
      line += k >= start ? name[k - start] : ' ';
      line += ' ';
    }
    lines.push_back(line);
  }
  for (std::size_t j = 0; j < wrote.size(); ++j) {
    std::string line = pad_left(row_labels[j], row_width) + " ";
    for (std::size_t key = 0; key < map.cols; ++key) line += inspect::shade(map(first_row + j, key));
    lines.push_back(line);
  }
  return lines;
}

// Every layer's and head's attention over what the last step read, generated rows only.
std::string attention_text(layers::Transformer& model, const tasks::Task& task,
                           const std::vector<tasks::Token>& prompt, const train::Generation& g) {
  const inspect::AttentionSample sample = inspect::collect_attention(model, task, {g.read})[0];
  std::vector<std::string> wrote;
  for (tasks::Token id : g.answer) wrote.push_back(task.token_name(id));
  // Without EOS, the last token was chosen but not read back: one row fewer.
  if (g.ended) wrote.push_back(task.token_name(tasks::Task::eos_id));
  std::string text;
  for (std::size_t l = 0; l < sample.maps.size(); ++l)
    for (std::size_t h = 0; h < sample.maps[l].size(); ++h) {
      text += "\nlayer " + std::to_string(l) + " head " + std::to_string(h) +
              " (row: read -> wrote; column: the token attended to)\n";
      for (const std::string& line :
           generated_rows_grid(sample.maps[l][h], sample.tokens, wrote, prompt.size()))
        text += line + "\n";
    }
  return text;
}

class Sampler {
 public:
  explicit Sampler(const SampleArgs& args)
      : args_(args), loaded_(inspect::load_model(args.checkpoint)), rng_(args.seed) {
    core::set_blas_threads(static_cast<int>(loaded_.config.train.threads));
    options_.temperature = args.temperature;
    options_.top_k = args.top_k;
    options_.max_tokens = args.max_tokens;
  }

  const tasks::Task& task() const { return *loaded_.task; }

  // Answers one prompt on `out`; a bad prompt throws std::invalid_argument.
  void answer(const std::string& text, std::FILE* out) {
    const std::vector<tasks::Token> prompt = train::parse_prompt(task(), text);
    const train::Generation g = train::generate(*loaded_.model, task(), prompt, options_, rng_);
    std::string printed = answer_line(task(), g) + "\n";
    if (args_.attention) printed += attention_text(*loaded_.model, task(), prompt, g);
    std::fputs(printed.c_str(), out);
    std::fflush(out);
  }

 private:
  SampleArgs args_;
  inspect::LoadedModel loaded_;
  core::Rng rng_;
  train::GenerateOptions options_;
};

// Prompts from stdin, one per line, until EOF. On a terminal a bad line is reported and the
// session goes on; from a pipe it ends the command.
void read_prompts(Sampler& sampler, std::FILE* out) {
  const bool terminal = isatty(STDIN_FILENO) == 1;
  if (terminal) {
    std::string tokens;
    const tasks::Task& task = sampler.task();
    for (std::size_t id = tasks::Task::first_own_id; id < task.vocab_size(); ++id)
      tokens += " " + task.token_names()[id];
    std::fprintf(out, "%s task; tokens:%s\nType a prompt (end with Ctrl-D).\n",
                 task.name().c_str(), tokens.c_str());
  }
  std::string line;
  for (;;) {
    if (terminal) {
      std::fputs("> ", out);
      std::fflush(out);
    }
    line.clear();
    int c;
    while ((c = std::fgetc(stdin)) != EOF && c != '\n') line += static_cast<char>(c);
    if (c == EOF && line.empty()) break;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    try {
      sampler.answer(line, out);
    } catch (const std::invalid_argument& error) {
      if (!terminal) throw;
      std::fprintf(out, "error: %s\n", error.what());
    }
  }
  if (terminal) std::fputs("\n", out);
}

void sample_command(const SampleArgs& args, std::FILE* out) {
  Sampler sampler(args);
  if (args.prompt) {
    sampler.answer(*args.prompt, out);
  } else {
    read_prompts(sampler, out);
  }
}

VerbRun add_sample_options(CLI::App& command) {
  auto args = std::make_shared<SampleArgs>();
  command.add_option("checkpoint", args->checkpoint, "a .safetensors checkpoint")
      ->required()
      ->check(CLI::ExistingFile);
  command.add_option("--prompt", args->prompt,
                     "the prompt's tokens, e.g. \"a c f b\" (default: read prompts from stdin, "
                     "one per line)");
  command.add_option("--temperature", args->temperature,
                     "0: greedy (the default); > 0: sample from softmax(logits / T)")
      ->check(at_least(0, false));
  command.add_option("--top-k", args->top_k,
                     "sample among the K most likely tokens only (default 0: all)")
      ->check(at_least(0, true));
  command.add_option("--max-tokens", args->max_tokens,
                     "stop after N tokens, EOS included (default: the task's longest answer + 1)")
      ->check(at_least(1, true));
  command.add_option("--seed", args->seed, "seed of the sampling (default 0)")
      ->check(at_least(0, true));
  command.add_flag("--attention", args->attention,
                   "also print, per layer and head, where each generated position looked");
  return [args](std::FILE* out) { sample_command(*args, out); };
}

}  // namespace

extern const Verb sample_verb{
    "sample", "Answer a prompt with a checkpoint's model (greedy, or sampled with a temperature).",
    add_sample_options};

}  // namespace qkv::app
