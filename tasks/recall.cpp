// RecallTask: key-value pairs, then queries; its options read from the config.
#include "tasks/recall.hpp"

#include <stdexcept>
#include <utility>

#include "tasks/limits.hpp"

namespace qkv::tasks {

namespace {

const RecallTaskOptions& checked(const RecallTaskOptions& o) {
  const auto fail = [](const std::string& what) {
    throw std::invalid_argument("task recall: " + what);
  };
  if (o.values < 1) fail("values must be at least 1");
  if (o.pairs < 1) fail("pairs must be at least 1");
  if (o.pairs > o.keys) {
    fail("pairs (" + std::to_string(o.pairs) + ") must not exceed keys (" +
         std::to_string(o.keys) + "): the keys of a prompt are distinct");
  }
  if (o.queries < 1 || o.queries > o.pairs) {
    fail("queries (" + std::to_string(o.queries) + ") must be in 1..pairs (" +
         std::to_string(o.pairs) + ")");
  }
  return o;
}

RecallTaskOptions read_recall_options(const qkv::ConfigNode& node) {
  RecallTaskOptions o;
  o.keys = node.get<std::size_t>("keys", o.keys);
  o.values = node.get<std::size_t>("values", o.values);
  node.require(o.values >= 1, "values", "at least 1 value symbol");
  o.pairs = node.get<std::size_t>("pairs", o.pairs);
  node.require(o.pairs >= 1 && o.pairs <= o.keys, "pairs",
               "1.." + node.path() + ".keys (" + std::to_string(o.keys) +
                   ") pairs: a prompt's keys differ");
  o.queries = node.get<std::size_t>("queries", o.queries);
  for (const auto& [key, value] : {std::pair{"keys", o.keys}, {"values", o.values}})
    node.require(value <= kMaxOwnTokens, key,
                 "at most " + std::to_string(kMaxOwnTokens) + " symbols (tasks/limits.hpp)");
  node.require(o.pairs <= kMaxPositions, "pairs",
               "at most " + std::to_string(kMaxPositions) + " (tasks/limits.hpp)");
  node.require(o.queries >= 1 && o.queries <= o.pairs, "queries",
               "1.." + node.path() + ".pairs (" + std::to_string(o.pairs) + ") queries");
  return o;
}

std::vector<std::string> recall_tokens(const RecallTaskOptions& o) {
  std::vector<std::string> names = letter_names(o.keys, "k");
  for (std::size_t v = 0; v < o.values; ++v) {
    names.push_back((o.values <= 10 ? "" : "v") + std::to_string(v));
  }
  return names;
}

}  // namespace

RecallTask::RecallTask(const RecallTaskOptions& options, LossOn loss_on)
    : GeneratedTask("recall", recall_tokens(checked(options)),
                    2 * options.pairs + 2 * options.queries, options.queries, loss_on),
      options_(options) {}

Example RecallTask::draw(core::Rng& rng) const {
  const std::vector<std::size_t> keys = choose_distinct(options_.keys, options_.pairs, rng);
  std::vector<Token> values(options_.pairs);
  Example example;
  for (std::size_t p = 0; p < options_.pairs; ++p) {
    values[p] = own_token(options_.keys + rng.below(options_.values));
    example.prompt.push_back(own_token(keys[p]));
    example.prompt.push_back(values[p]);
  }
  for (std::size_t q : choose_distinct(options_.pairs, options_.queries, rng)) {
    example.prompt.push_back(own_token(keys[q]));
    example.answer.push_back(values[q]);
  }
  return example;
}

// The prompt is key value pairs at (2p, 2p + 1), then the queried keys.
std::vector<std::vector<std::size_t>> RecallTask::answer_sources(
    const std::vector<Token>& prompt) const {
  const std::size_t queries_begin = 2 * options_.pairs;
  std::vector<std::vector<std::size_t>> sources;
  for (std::size_t q = queries_begin; q < prompt.size(); ++q) {
    std::vector<std::size_t>& value = sources.emplace_back();
    for (std::size_t p = 0; p + 1 < queries_begin && p + 1 < prompt.size(); p += 2)
      if (prompt[p] == prompt[q]) value.push_back(p + 1);
  }
  return sources;
}

std::unique_ptr<Task> make_recall_task(const qkv::ConfigNode& options, LossOn loss_on,
                                       const std::string&) {
  return std::make_unique<RecallTask>(read_recall_options(options), loss_on);
}

}  // namespace qkv::tasks
