// The training run that both data-parallel suites compare across ranks: tests/train's (two
// threads standing in for two ranks) and tests/mpi's (two MPI processes). Its tolerance,
// kDataParallelTolerance, is explained in tests/mpi/test_data_parallel.cpp.
//
//   Trained two = train_run(data_parallel_config(), dir + "/two", &rank);
//   Trained one = train_run(data_parallel_config(), dir + "/one", nullptr);
//   CHECK(max_difference(two.weights, one.weights) <= kDataParallelTolerance);
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "train/communicator.hpp"
#include "train/config.hpp"
#include "train/trainer.hpp"

namespace qkv::test {

inline constexpr double kDataParallelTolerance = 1e-5;

// Prompts of 2 to 9 tokens, so that the ranks' shards hold unequal numbers of answer
// tokens; plain SGD, which carries round-off into the weights without amplifying it.
inline const char* const kDataParallelConfig = R"(
name: data-parallel
seed: 3
task: {type: copy, symbols: 10, min_len: 2, max_len: 9}
model: {d_model: 32, heads: 2, layers: 2, d_ff: 64}
optim: {type: sgd, lr: 0.3}
train: {steps: 8, batch_size: 8, eval_every: 4, eval_samples: 50, log_every: 1, threads: 1}
)";

inline train::Config data_parallel_config(const std::vector<std::string>& sets = {}) {
  return train::parse_config(kDataParallelConfig, "data-parallel.yaml", sets);
}

struct Trained {
  std::vector<float> weights;  // every parameter, in name order
  train::TrainSummary summary;
};

// Trains config into dir, quietly, on `ranks` (null: this process alone).
inline Trained train_run(train::Config config, const std::string& dir,
                         train::Communicator* ranks, bool resume = false) {
  train::TrainerOptions options;
  options.out_dir = dir;
  options.out = nullptr;
  options.communicator = ranks;
  options.resume = resume;
  train::Trainer trainer(std::move(config), options);
  Trained result;
  result.summary = trainer.run();
  for (const auto& [name, tensor] : trainer.model().state()) {
    const float* values = tensor.data<float>();
    result.weights.insert(result.weights.end(), values, values + tensor.numel());
  }
  return result;
}

inline double max_difference(const std::vector<float>& a, const std::vector<float>& b) {
  REQUIRE(a.size() == b.size());
  double most = 0;
  for (std::size_t i = 0; i < a.size(); ++i)
    most = std::max(most, std::fabs(double(a[i]) - double(b[i])));
  return most;
}

}  // namespace qkv::test
