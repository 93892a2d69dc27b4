// The qkv command line: `qkv train` and `qkv eval` (qkv_main.cpp is just main()). Kept in
// the library so that tests can run the command in-process or in a forked child.
//
//   qkv train CONFIG.yaml [--out DIR] [--set key.path=value ...] [--resume] [--stop-at ACC]
//       prints the resolved config and the parameter count, then progress; writes DIR
//       (default runs/<config name>): config.yaml, metrics.jsonl, last/best.safetensors
//   qkv eval CHECKPOINT [--samples N] [--data FILE] [--seed S]
//       prints {"loss":…,"token_acc":…,"seq_acc":…,"samples":…} on one line
//
//   int code = run_cli({"qkv", "eval", "runs/copy/best.safetensors"}, stdout, stderr);
//
// Returns the exit code: 0 on success (and for --help), non-zero on any error, whose
// message goes to `err` on one line.
#pragma once

#include <cstdio>
#include <string>
#include <vector>

namespace qkv::app {

// args[0] is the program name, as in argv.
int run_cli(const std::vector<std::string>& args, std::FILE* out, std::FILE* err);

}  // namespace qkv::app
