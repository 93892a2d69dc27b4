// AgreementTask: subject-verb number agreement across attractors, in two formats.
//
// format simple (the default): a prompt is 0..max_leading filler words, the subject (a
// singular or plural noun), then a span of 0..max_attractors attractor nouns (each singular
// or plural at random) and 0..max_fillers filler words in random order. The subject is
// always the first noun, so "read the first noun" solves it without any syntax.
//
//   old cat near the dogs with keys SEP is EOS    (2 attractors)
//
// format hard: the subject is found by structure, not by position (Linzen et al. 2016's
// agreement across attractors, with their hierarchical toy grammar's centre embedding):
//
//   prompt   := [intro] np(subject) modifier*            verb agrees with the subject
//   intro    := pp{1..max_intro}                         with probability intro_rate
//   modifier := pp | relative                            0..max_modifiers of them
//   pp       := preposition np                           an attractor
//   relative := relative_pronoun np [relative] inner_verb  (nested up to max_depth: S1 S2
//               S3 V3 V2 V1; each inner verb agrees with its own clause's noun)
//   np       := filler{0..max_noun_fillers} noun         (each noun singular or plural)
//
//   near the dog by the tree the old keys that the boy sees SEP are EOS
//
// The subject is the first noun outside a prepositional phrase. An intro comes first in
// most prompts (intro_rate 0.9), so the first noun is usually an intro noun of random
// number and the first-noun rule scores about 0.55; nested relative clauses put a noun and
// a verb of their own number right before the answer.
//
// Example::group is the number of attractors, Example::distance the number of prompt words
// after the subject. Simple counts every noun after the subject as an attractor (each is of
// random number); hard counts the other nouns whose number differs from the subject's
// (before or after it: both mislead a shortcut), the ones that can actually mislead.
//
//   task: {type: agreement, max_attractors: 3, fillers: [the, near, with]}
//   task: {type: agreement, format: hard, max_intro: 2, max_depth: 2}
//
// Every option is a config key of the same name (defaults below; a format's keys are
// errors in the other format); every word is one token and may appear in one list only.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "strict_yaml/config_node.hpp"
#include "tasks/generated.hpp"

namespace qkv::tasks {

enum class AgreementFormat { simple, hard };

struct AgreementTaskOptions {
  AgreementFormat format = AgreementFormat::simple;
  std::vector<std::string> singular_nouns = {"cat", "dog", "key", "boy", "girl", "tree"};
  std::vector<std::string> plural_nouns = {"cats", "dogs", "keys", "boys", "girls", "trees"};
  std::string singular_verb = "is";
  std::string plural_verb = "are";
  std::vector<std::string> fillers = {"the", "near", "with", "old", "big", "of"};
  // format simple
  std::size_t max_attractors = 3;
  std::size_t max_fillers = 4;
  std::size_t max_leading = 2;
  // format hard
  std::vector<std::string> prepositions = {"near", "with", "by", "behind"};
  std::string relative_pronoun = "that";
  std::vector<std::string> singular_inner_verbs = {"sees", "likes"};
  std::vector<std::string> plural_inner_verbs = {"see", "like"};
  std::size_t max_intro = 2;         // prepositional phrases before the subject
  double intro_rate = 0.9;           // how often a prompt opens with them, in [0, 1]
  std::size_t max_modifiers = 2;     // prepositional phrases or relative clauses after it
  std::size_t max_depth = 2;         // relative clauses nest this deep; 0: none
  std::size_t max_noun_fillers = 1;  // filler words before each noun

  // The hard format's defaults: its fillers are not prepositions ("the", "old", "big", "red").
  static AgreementTaskOptions hard();
};

class AgreementTask : public GeneratedTask {
 public:
  // Throws std::invalid_argument on an empty noun (or, hard, preposition or inner verb)
  // list, no fillers while fillers are asked for, an intro_rate outside [0, 1], or a word
  // listed twice (across all lists).
  AgreementTask(const AgreementTaskOptions& options, LossOn loss_on);

  std::string group_name() const override { return "attractors"; }
  // The subject: the first noun (hard: the first outside a prepositional phrase).
  std::vector<std::vector<std::size_t>> answer_sources(
      const std::vector<Token>& prompt) const override;

  const AgreementTaskOptions& options() const { return options_; }
  // Whether a token is a noun, and whether plural (for tests and baselines).
  bool is_noun(Token id) const { return id >= first_singular_ && id < singular_verb_; }
  bool is_plural_noun(Token id) const { return id >= first_plural_ && id < singular_verb_; }

 protected:
  Example draw(core::Rng& rng) const override;

 private:
  Example draw_simple(core::Rng& rng) const;
  Example draw_hard(core::Rng& rng) const;
  // Appends np := filler{0..max_noun_fillers} noun; returns the noun's position.
  std::size_t append_np(bool plural, std::vector<Token>& prompt, core::Rng& rng) const;
  void append_relative(std::size_t depth, std::vector<Token>& prompt, core::Rng& rng) const;
  Token noun(bool plural, core::Rng& rng) const;
  Token filler(core::Rng& rng) const;

  AgreementTaskOptions options_;
  // Token ids of each word class (hard's classes follow the fillers).
  Token first_singular_, first_plural_, singular_verb_, plural_verb_, first_filler_;
  Token first_preposition_ = 0, relative_pronoun_ = 0, first_singular_inner_ = 0,
        first_plural_inner_ = 0;
};

// The `agreement` type (registry.hpp). Errors are ConfigErrors at the key: an empty noun
// list, a word with spaces or named PAD, SEP or EOS, a word in two lists, no fillers while
// fillers are asked for, a key of the other format. No state.
std::unique_ptr<Task> make_agreement_task(const qkv::ConfigNode& options, LossOn loss_on,
                                          const std::string& state);

}  // namespace qkv::tasks
