// AgreementTask: subject-verb number agreement across attractors.
//
// A prompt is 0..max_leading filler words, the subject (a singular or plural noun), then a
// span of 0..max_attractors attractor nouns (each singular or plural at random) and
// 0..max_fillers filler words in random order. The answer is the verb form agreeing with
// the subject: the model has to find the first noun and ignore the nearer ones.
//
//   old cat near the dogs with keys SEP is        (2 attractors)
//
// Example::group is the number of attractor nouns, so evaluation can report accuracy per
// attractor count (group_name() is "attractors").
#pragma once

#include "tasks/generated.hpp"

namespace qkv::tasks {

class AgreementTask : public GeneratedTask {
 public:
  // Throws std::invalid_argument on an empty noun list, no fillers while max_fillers or
  // max_leading is positive, or a word listed twice (across all lists).
  AgreementTask(const AgreementTaskOptions& options, LossOn loss_on);

  std::string group_name() const override { return "attractors"; }

 protected:
  Example draw(core::Rng& rng) const override;

 private:
  AgreementTaskOptions options_;
  // Token ids of each word class.
  Token first_singular_, first_plural_, singular_verb_, plural_verb_, first_filler_;
};

}  // namespace qkv::tasks
