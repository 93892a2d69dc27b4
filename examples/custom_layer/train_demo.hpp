// train_demo: a few training steps of a model whose config names the user-defined
// `gated_ffn`, on the copy task, so the example shows the layer learning end to end.
//
// The config file holds the `model:` section build_model reads and a small `demo:` one:
//   demo: {steps: 40, batch: 16, length: 6, vocab: 10, lr: 0.003, seed: 1}
// Copy task: n = length random tokens, a separator, the same n tokens; the model reads all
// but the last and predicts the next token; the loss counts the copied half only.
//
//   std::vector<double> losses = example::train_demo("config.yaml", stdout);
#pragma once

#include <cstdio>
#include <string>
#include <vector>

namespace example {

// Trains as the config says, prints "step <i>  loss <x>" lines to `out` (if not null), and
// returns the loss of every step.
std::vector<double> train_demo(const std::string& config_path, std::FILE* out);

}  // namespace example
