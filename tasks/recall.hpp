// RecallTask: associative recall. The prompt lists `pairs` key-value pairs (distinct keys
// from `keys` symbols, values from `values` symbols, repeats allowed), then `queries`
// distinct keys among them; the answer is each queried key's value, in query order.
//
//   a 3 c 1 f 7 c a SEP 1 3 EOS   (pairs 3, queries 2)
//
// Keys are named a..z (k0, k1, ... beyond 26), values 0..9 (v0, v1, ... beyond 10).
//
//   task: {type: recall, keys: 16, values: 16, pairs: 4, queries: 1}   # the defaults
#pragma once

#include <memory>
#include <string>

#include "strict_yaml/config_node.hpp"
#include "tasks/generated.hpp"

namespace qkv::tasks {

struct RecallTaskOptions {
  std::size_t keys = 16;
  std::size_t values = 16;
  std::size_t pairs = 4;
  std::size_t queries = 1;
};

class RecallTask : public GeneratedTask {
 public:
  // Throws std::invalid_argument unless 1 <= queries <= pairs <= keys and values >= 1.
  RecallTask(const RecallTaskOptions& options, LossOn loss_on);
  // Each queried key's value position.
  std::vector<std::vector<std::size_t>> answer_sources(
      const std::vector<Token>& prompt) const override;

 protected:
  Example draw(core::Rng& rng) const override;

 private:
  RecallTaskOptions options_;
};

// The `recall` type (registry.hpp): the keys keys, values, pairs and queries, a ConfigError
// at the key unless 1 <= queries <= pairs <= keys and values >= 1. No state.
std::unique_ptr<Task> make_recall_task(const qkv::ConfigNode& options, LossOn loss_on,
                                       const std::string& state);

}  // namespace qkv::tasks
