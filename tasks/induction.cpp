// InductionTask: distinct random tokens, a cue repeated from among them, and the answer
// that continues the cue's earlier occurrence; its options read from the config.
#include "tasks/induction.hpp"

#include <algorithm>
#include <stdexcept>
#include <utility>

#include "tasks/limits.hpp"

namespace qkv::tasks {

namespace {

const InductionTaskOptions& checked(const InductionTaskOptions& o) {
  const auto fail = [](const std::string& what) {
    throw std::invalid_argument("task induction: " + what);
  };
  if (o.continuation < 1) fail("continuation must be at least 1");
  if (o.min_len <= o.continuation) {
    fail("min_len (" + std::to_string(o.min_len) + ") must exceed continuation (" +
         std::to_string(o.continuation) + "): the cue needs that many tokens after it");
  }
  if (o.max_len < o.min_len) {
    fail("max_len (" + std::to_string(o.max_len) + ") must not be below min_len (" +
         std::to_string(o.min_len) + ")");
  }
  if (o.max_len > o.symbols) {
    fail("max_len (" + std::to_string(o.max_len) + ") must not exceed symbols (" +
         std::to_string(o.symbols) + "): the context's tokens are distinct");
  }
  return o;
}

InductionTaskOptions read_induction_options(const qkv::ConfigNode& node) {
  InductionTaskOptions o;
  o.symbols = node.get<std::size_t>("symbols", o.symbols);
  o.min_len = node.get<std::size_t>("min_len", o.min_len);
  o.max_len = node.get<std::size_t>("max_len", o.max_len);
  o.continuation = node.get<std::size_t>("continuation", o.continuation);
  node.require(o.symbols <= kMaxOwnTokens, "symbols",
               "at most " + std::to_string(kMaxOwnTokens) + " symbols (tasks/limits.hpp)");
  for (const auto& [key, value] : {std::pair{"min_len", o.min_len}, {"max_len", o.max_len},
                                   {"continuation", o.continuation}})
    node.require(value <= kMaxPositions, key,
                 "at most " + std::to_string(kMaxPositions) + " (tasks/limits.hpp)");
  node.require(o.continuation >= 1, "continuation", "at least 1 token");
  node.require(o.min_len > o.continuation, "min_len",
               "more than " + node.path() + ".continuation (" + std::to_string(o.continuation) +
                   ") tokens: the cue needs that many after it");
  node.require(o.max_len >= o.min_len, "max_len",
               "a length of at least " + node.path() + ".min_len (" + std::to_string(o.min_len) +
                   ")");
  node.require(o.max_len <= o.symbols, "max_len",
               "at most " + node.path() + ".symbols (" + std::to_string(o.symbols) +
                   "): the context's tokens are distinct");
  return o;
}

}  // namespace

InductionTask::InductionTask(const InductionTaskOptions& options, LossOn loss_on)
    : GeneratedTask("induction", letter_names(checked(options).symbols, "s"),
                    options.max_len + 1 + 1 + options.continuation, 1 + options.continuation,
                    loss_on),
      options_(options) {}

Example InductionTask::draw(core::Rng& rng) const {
  const std::size_t n = options_.min_len + rng.below(options_.max_len - options_.min_len + 1);
  Example example;
  for (std::size_t s : choose_distinct(options_.symbols, n, rng)) {
    example.prompt.push_back(own_token(s));
  }
  const std::size_t cue = rng.below(n - options_.continuation);
  example.prompt.push_back(example.prompt[cue]);
  example.answer.assign(example.prompt.begin() + static_cast<std::ptrdiff_t>(cue),
                        example.prompt.begin() +
                            static_cast<std::ptrdiff_t>(cue + 1 + options_.continuation));
  example.distance = static_cast<int>(n - cue);  // tokens after the earlier occurrence
  return example;
}

std::vector<std::vector<std::size_t>> InductionTask::answer_sources(
    const std::vector<Token>& prompt) const {
  if (prompt.size() < 2) return {};
  const std::size_t last = prompt.size() - 1;
  const auto first = std::find(prompt.begin(), prompt.end(), prompt[last]);
  const auto occurrence = static_cast<std::size_t>(first - prompt.begin());
  if (occurrence == last) return {};  // no earlier occurrence: not this task's prompt
  std::vector<std::vector<std::size_t>> sources = {{occurrence, last}};
  for (std::size_t j = 1; j <= options_.continuation && occurrence + j < last; ++j) {
    sources.push_back({occurrence + j});
  }
  return sources;
}

std::unique_ptr<Task> make_induction_task(const qkv::ConfigNode& options, LossOn loss_on,
                                          const std::string&) {
  return std::make_unique<InductionTask>(read_induction_options(options), loss_on);
}

}  // namespace qkv::tasks
