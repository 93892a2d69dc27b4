// The qkv command: train a small transformer from a YAML config and evaluate checkpoints.
//
//   qkv --help
//   qkv --version
#include <cstdio>

#include <CLI/CLI.hpp>

int main(int argc, char** argv) {
  CLI::App app{"qkv: a tiny trainable transformer framework"};
  app.set_version_flag("--version", "qkv 0.1.0");
  CLI11_PARSE(app, argc, argv);
  std::puts("qkv: give a command; see qkv --help");
  return 0;
}
