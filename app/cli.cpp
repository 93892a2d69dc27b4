// The qkv command's parser and dispatch (see cli.hpp), and the programs' entry point
// qkv::app::main (see main.hpp); the verbs are in their own files.
#include "app/cli.hpp"
#include "app/main.hpp"

#include <optional>
#include <sstream>
#include <stdexcept>

#include <CLI/CLI.hpp>

#include "core/allocator.hpp"
#include "strict_yaml/closest_match.hpp"
#include "strict_yaml/text.hpp"

namespace qkv::app {

extern const Verb train_verb;  // app/train.cpp
extern const Verb eval_verb;   // app/eval.cpp
extern const Verb sample_verb;   // app/sample.cpp
extern const Verb inspect_verb;  // app/inspect.cpp
extern const Verb report_verb;   // app/report.cpp
extern const Verb ablate_verb;   // app/ablate.cpp

namespace {

// The verbs in the order `qkv --help` lists them (and the unknown-verb message names them).
const Verb* const kVerbs[] = {&train_verb,   &eval_verb,   &sample_verb,
                              &inspect_verb, &report_verb, &ablate_verb};

// Longer messages are cut (with their length said): no message of qkv's is this long.
constexpr std::size_t kMaxMessageBytes = 4000;

struct AddedVerb {
  CLI::App* command;
  VerbRun run;
};

void configure(CLI::App& qkv) {
  qkv.set_version_flag("--version", "qkv 0.1.0");
  qkv.require_subcommand(1);
  qkv.failure_message([](const CLI::App*, const CLI::Error& error) {
    return std::string("qkv: error: ") + error.what() + " (see --help)\n";
  });
}

std::vector<AddedVerb> add_verbs(CLI::App& qkv) {
  std::vector<AddedVerb> added;
  for (const Verb* verb : kVerbs) {
    CLI::App* command = qkv.add_subcommand(verb->name, verb->description);
    added.push_back({command, verb->add_options(*command)});
  }
  return added;
}

// CLI11 would call an unknown verb a missing subcommand; name it, with a suggestion.
std::optional<int> reject_unknown_verb(const std::vector<std::string>& args, std::FILE* err) {
  if (args.size() < 2 || args[1].empty() || args[1][0] == '-') return std::nullopt;
  std::vector<std::string> names;
  std::string listed;
  for (const Verb* verb : kVerbs) {
    if (args[1] == verb->name) return std::nullopt;
    names.push_back(verb->name);
    listed += (listed.empty() ? "" : ", ") + names.back();
  }
  std::string message = "qkv: error: unknown command '" + args[1] + "'";
  const std::string suggestion = closest_match(args[1], names);
  if (!suggestion.empty()) message += "; did you mean '" + suggestion + "'?";
  std::fprintf(err, "%s (commands: %s; see qkv --help)\n", message.c_str(), listed.c_str());
  return 2;
}

// The exit code when parsing ends the command (help, version or a bad argument).
std::optional<int> parse(CLI::App& qkv, const std::vector<std::string>& args, std::FILE* out,
                         std::FILE* err) {
  try {
    // CLI11 takes the arguments without the program name, last first.
    std::vector<std::string> reversed(args.rbegin(), args.rend());
    if (!reversed.empty()) reversed.pop_back();
    qkv.parse(reversed);
  } catch (const CLI::ParseError& error) {
    std::ostringstream help_out;
    std::ostringstream help_err;
    const int code = qkv.exit(error, help_out, help_err);
    std::fputs(help_out.str().c_str(), out);
    std::fputs(help_err.str().c_str(), err);
    return code;
  }
  return std::nullopt;
}

int run_chosen(const std::vector<AddedVerb>& verbs, std::FILE* out, std::FILE* err) {
  try {
    for (const AddedVerb& verb : verbs)
      if (verb.command->parsed()) verb.run(out);
  } catch (const VerbExit& exit) {
    std::fprintf(err, "qkv: %s\n", quote_for_message(exit.message, kMaxMessageBytes).c_str());
    return exit.code;
  } catch (const std::exception& error) {
    // One printable line whatever a message quotes (a message is built from others' text).
    std::fprintf(err, "qkv: error: %s\n", quote_for_message(error.what(), kMaxMessageBytes).c_str());
    return 1;
  }
  return 0;
}

}  // namespace

int run_cli(const std::vector<std::string>& args, std::FILE* out, std::FILE* err) {
  CLI::App qkv{"qkv: train a tiny transformer from a YAML config and watch it learn Wq/Wk/Wv.",
               "qkv"};
  configure(qkv);
  const std::vector<AddedVerb> verbs = add_verbs(qkv);
  if (const std::optional<int> code = reject_unknown_verb(args, err)) return *code;
  if (const std::optional<int> code = parse(qkv, args, out, err)) return *code;
  return run_chosen(verbs, out, err);
}

int main(int argc, char** argv) {
  core::tune_allocator();
  return run_cli(std::vector<std::string>(argv, argv + argc), stdout, stderr);
}

}  // namespace qkv::app
