// SequenceTask: copy, reverse and sort over random letter strings.
#include "tasks/sequence.hpp"

#include <algorithm>
#include <stdexcept>

namespace qkv::tasks {

namespace {

const char* kind_name(SequenceKind kind) {
  switch (kind) {
    case SequenceKind::copy: return "copy";
    case SequenceKind::reverse: return "reverse";
    case SequenceKind::sort: return "sort";
  }
  return "?";
}

const SequenceTaskOptions& checked(SequenceKind kind, const SequenceTaskOptions& options) {
  const std::string who = std::string("task ") + kind_name(kind) + ": ";
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

SequenceTask::SequenceTask(SequenceKind kind, const SequenceTaskOptions& options,
                           LossOn loss_on)
    : GeneratedTask(kind_name(kind), letter_names(checked(kind, options).symbols, "s"),
                    2 * options.max_len, loss_on),
      kind_(kind),
      options_(options) {}

Example SequenceTask::draw(core::Rng& rng) const {
  const std::size_t length =
      options_.min_len + rng.below(options_.max_len - options_.min_len + 1);
  Example example;
  example.prompt.resize(length);
  for (Token& id : example.prompt) id = own_token(rng.below(options_.symbols));
  example.answer = example.prompt;
  if (kind_ == SequenceKind::reverse) std::reverse(example.answer.begin(), example.answer.end());
  if (kind_ == SequenceKind::sort) std::sort(example.answer.begin(), example.answer.end());
  return example;
}

}  // namespace qkv::tasks
