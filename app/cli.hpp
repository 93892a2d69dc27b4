// The qkv command line: the parser that every verb registers into, the dispatch to the
// chosen verb, and the one-line errors. Each verb is one file (app/train.cpp, app/eval.cpp)
// that defines a `Verb`: its name, its description, and a function that adds its options
// to its subcommand and returns what to run. cli.cpp lists the verbs: a new one is a new
// file, plus its declaration and its place in that list. A program starts through
// qkv::app::main (main.hpp); run_cli takes the arguments, output and error streams given,
// so that tests can run the command in-process or in a forked child.
//
//   qkv train CONFIG.yaml [--out DIR] [--set key.path=value ...] [--resume [--force]]
//             [--stop-at ACC]
//       prints the resolved config and the parameter count, then progress; writes DIR
//       (default runs/<config name>): config.yaml, metrics.jsonl, last/best.safetensors;
//       Ctrl-C saves last.safetensors and says how to resume
//   qkv eval CHECKPOINT [--samples N] [--data FILE] [--seed S] [--show]
//       prints {"loss":…,"token_acc":…,"seq_acc":…,"samples":…} on one line (--show: each
//       example's prompt, target and greedy answer before it, the wrong ones marked)
//   qkv ablate SWEEP.yaml [--variants v1,v2,...] [--seeds N] [--jobs J] [--out DIR]
//              [--set key.path=value ...]
//       trains every attention variant x seed of a sweep config (resumable), then writes
//       DIR/ablation.md, .csv, .json (app/ablate.cpp)
//   qkv sample CHECKPOINT [--prompt "a c f b"] [--temperature T] [--top-k K]
//              [--max-tokens N] [--seed S] [--attention]
//       prints the model's answer (prompts from stdin without --prompt)
//
//   int code = run_cli({"qkv", "eval", "runs/copy/best.safetensors"}, stdout, stderr);
//
// Returns the exit code: 0 on success (and for --help), 2 for an unknown verb, CLI11's
// code (100-127) for bad arguments, 1 when the verb fails, 130 or 143 when a training was
// stopped by SIGINT or SIGTERM (after saving it); the message goes to `err` on one line.
//
// A verb (app/<name>.cpp; CLI11 is needed only there):
//
//   VerbRun add_inspect_options(CLI::App& command) {
//     auto args = std::make_shared<InspectArgs>();   // outlives parsing: the run owns it
//     command.add_option("checkpoint", args->checkpoint, "a .safetensors checkpoint");
//     return [args](std::FILE* out) { inspect(*args, out); };
//   }
//   // extern: a namespace-scope const alone would be invisible to cli.cpp
//   extern const Verb inspect_verb{"inspect", "Show what each head attends to.",
//                                  add_inspect_options};
//
// and in cli.cpp, `extern const Verb inspect_verb;` and `&inspect_verb` in kVerbs.
#pragma once

#include <cstdio>
#include <functional>
#include <string>
#include <vector>

namespace CLI {
class App;
}

namespace qkv::app {

// What a verb does once its arguments are parsed. It reports failure by throwing a
// std::exception, whose what() becomes the line "qkv: error: <what>".
using VerbRun = std::function<void(std::FILE* out)>;

// Thrown by a verb that ends on purpose with another exit code than 0 or 1 (a training
// stopped by SIGINT: 130, by SIGTERM: 143); `message` becomes the line "qkv: <message>".
struct VerbExit {
  int code;
  std::string message;
};

struct Verb {
  const char* name;         // the subcommand: `qkv <name> ...`
  const char* description;  // its line in `qkv --help`
  // Adds the verb's positional arguments and options to its subcommand, bound to storage
  // that the returned run owns.
  VerbRun (*add_options)(CLI::App& command);
};

// args[0] is the program name, as in argv.
int run_cli(const std::vector<std::string>& args, std::FILE* out, std::FILE* err);

}  // namespace qkv::app
