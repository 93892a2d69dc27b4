// AgreementTask: subject-verb number agreement across attractors.
//
// A prompt is 0..max_leading filler words, the subject (a singular or plural noun), then a
// span of 0..max_attractors attractor nouns (each singular or plural at random) and
// 0..max_fillers filler words in random order. The answer is the verb form agreeing with
// the subject: the model has to find the first noun and ignore the nearer ones.
//
//   old cat near the dogs with keys SEP is EOS    (2 attractors)
//
// Example::group is the number of attractor nouns, so evaluation can report accuracy per
// attractor count (group_name() is "attractors").
//
//   task: {type: agreement, max_attractors: 3, fillers: [the, near, with]}
//
// Every option is a config key of the same name (defaults below); every word is one token
// and may appear in one list only.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "strict_yaml/config_node.hpp"
#include "tasks/generated.hpp"

namespace qkv::tasks {

// [leading fillers] subject [span of attractor nouns and fillers] SEP verb EOS.
struct AgreementTaskOptions {
  std::vector<std::string> singular_nouns = {"cat", "dog", "key", "boy", "girl", "tree"};
  std::vector<std::string> plural_nouns = {"cats", "dogs", "keys", "boys", "girls", "trees"};
  std::string singular_verb = "is";
  std::string plural_verb = "are";
  std::vector<std::string> fillers = {"the", "near", "with", "old", "big", "of"};
  std::size_t max_attractors = 3;
  std::size_t max_fillers = 4;
  std::size_t max_leading = 2;
};

class AgreementTask : public GeneratedTask {
 public:
  // Throws std::invalid_argument on an empty noun list, no fillers while max_fillers or
  // max_leading is positive, or a word listed twice (across all lists).
  AgreementTask(const AgreementTaskOptions& options, LossOn loss_on);

  std::string group_name() const override { return "attractors"; }
  // The subject: the first noun of the prompt.
  std::vector<std::vector<std::size_t>> answer_sources(
      const std::vector<Token>& prompt) const override;

 protected:
  Example draw(core::Rng& rng) const override;

 private:
  AgreementTaskOptions options_;
  // Token ids of each word class.
  Token first_singular_, first_plural_, singular_verb_, plural_verb_, first_filler_;
};

// The `agreement` type (registry.hpp). Errors are ConfigErrors at the key: an empty noun
// list, a word with spaces or named PAD, SEP or EOS, a word in two lists, no fillers while
// max_fillers or max_leading is positive. No state.
std::unique_ptr<Task> make_agreement_task(const qkv::ConfigNode& options, LossOn loss_on,
                                          const std::string& state);

}  // namespace qkv::tasks
