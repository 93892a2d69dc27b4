// SequenceTask: random letter strings, and the keys that shape them.
#include "tasks/sequence.hpp"

#include <stdexcept>
#include <utility>

#include "tasks/limits.hpp"

namespace qkv::tasks {

namespace {

const SequenceTaskOptions& checked(const std::string& name, const SequenceTaskOptions& options) {
  const std::string who = "task " + name + ": ";
  if (options.symbols < 1) throw std::invalid_argument(who + "symbols must be at least 1");
  if (options.min_len < 1) throw std::invalid_argument(who + "min_len must be at least 1");
  if (options.min_len > options.max_len) {
    throw std::invalid_argument(who + "min_len (" + std::to_string(options.min_len) +
                                ") must not exceed max_len (" +
                                std::to_string(options.max_len) + ")");
  }
  return options;
}

}  // namespace

SequenceTaskOptions read_sequence_options(const qkv::ConfigNode& node) {
  SequenceTaskOptions o;
  o.symbols = node.get<std::size_t>("symbols", o.symbols);
  node.require(o.symbols >= 1, "symbols", "at least 1 symbol");
  node.require(o.symbols <= kMaxOwnTokens, "symbols",
               "at most " + std::to_string(kMaxOwnTokens) + " symbols (tasks/limits.hpp)");
  o.min_len = node.get<std::size_t>("min_len", o.min_len);
  node.require(o.min_len >= 1, "min_len", "a length of at least 1");
  o.max_len = node.get<std::size_t>("max_len", o.max_len);
  node.require(o.max_len <= kMaxPositions, "max_len",
               "at most " + std::to_string(kMaxPositions) + " (tasks/limits.hpp)");
  node.require(o.max_len >= o.min_len, "max_len",
               "a length of at least " + node.path() + ".min_len (" +
                   std::to_string(o.min_len) + ")");
  return o;
}

SequenceTask::SequenceTask(const std::string& name, const SequenceTaskOptions& options,
                           LossOn loss_on)
    : GeneratedTask(name, letter_names(checked(name, options).symbols, "s"),
                    2 * options.max_len, options.max_len, loss_on),
      options_(options) {}

Example SequenceTask::draw(core::Rng& rng) const {
  const std::size_t length =
      options_.min_len + rng.below(options_.max_len - options_.min_len + 1);
  Example example;
  example.prompt.resize(length);
  for (Token& id : example.prompt) id = own_token(rng.below(options_.symbols));
  example.answer = answer_to(example.prompt);
  return example;
}

}  // namespace qkv::tasks
