// GeneratedTask: the hash split of the prompt space into training and evaluation parts.
#include "tasks/generated.hpp"

#include <numeric>
#include <stdexcept>

namespace qkv::tasks {

namespace {

// Enough tries that a split with a non-empty side essentially never fails by bad luck
// (a 1/16 side is missed 4096 times in a row with probability ~1e-115).
constexpr int max_tries = 4096;
constexpr std::uint64_t eval_buckets = 16;

}  // namespace

bool GeneratedTask::is_eval_prompt(const std::vector<Token>& prompt) {
  std::uint64_t h = 0xcbf29ce484222325ULL;  // FNV-1a over the token ids
  for (Token id : prompt) {
    h ^= static_cast<std::uint32_t>(id);
    h *= 0x100000001b3ULL;
  }
  h ^= h >> 33;  // murmur3's finalizer, so the low bits depend on every token
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  return h % eval_buckets == 0;
}

Example GeneratedTask::draw_where(core::Rng& rng, bool eval) const {
  for (int i = 0; i < max_tries; ++i) {
    Example example = draw(rng);
    if (is_eval_prompt(example.prompt) == eval) return example;
  }
  throw std::invalid_argument("task " + name() + ": no " + (eval ? "evaluation" : "training") +
                              " prompt in " + std::to_string(max_tries) +
                              " draws; the prompt space is too small to hold out 1/" +
                              std::to_string(eval_buckets) + " of it for evaluation");
}

Example GeneratedTask::draw_training(core::Rng& rng) const { return draw_where(rng, false); }

std::vector<Example> GeneratedTask::eval_examples(std::size_t count, std::uint64_t seed) const {
  core::Rng rng = core::Rng(seed).split(eval_stream);
  std::vector<Example> examples;
  examples.reserve(count);
  for (std::size_t i = 0; i < count; ++i) examples.push_back(draw_where(rng, true));
  return examples;
}

std::vector<std::size_t> choose_distinct(std::size_t n, std::size_t k, core::Rng& rng) {
  std::vector<std::size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  for (std::size_t i = 0; i < k; ++i) std::swap(order[i], order[i + rng.below(n - i)]);
  order.resize(k);
  return order;
}

std::vector<std::string> letter_names(std::size_t n, const std::string& prefix) {
  std::vector<std::string> names;
  for (std::size_t i = 0; i < n; ++i) {
    names.push_back(n <= 26 ? std::string(1, static_cast<char>('a' + i))
                            : prefix + std::to_string(i));
  }
  return names;
}

}  // namespace qkv::tasks
