// AgreementTask: the verb agrees with the subject, not with the attractors around it; the
// simple and hard formats' generators, and their options read from the config.
#include "tasks/agreement.hpp"

#include <algorithm>
#include <map>
#include <stdexcept>
#include <utility>

#include "strict_yaml/text.hpp"
#include "tasks/limits.hpp"

namespace qkv::tasks {

namespace {

bool hard_format(const AgreementTaskOptions& o) { return o.format == AgreementFormat::hard; }

const AgreementTaskOptions& checked(const AgreementTaskOptions& o) {
  const auto fail = [](const std::string& what) {
    throw std::invalid_argument("task agreement: " + what);
  };
  if (o.singular_nouns.empty()) fail("singular_nouns must not be empty");
  if (o.plural_nouns.empty()) fail("plural_nouns must not be empty");
  if (!hard_format(o) && o.fillers.empty() && (o.max_fillers > 0 || o.max_leading > 0)) {
    fail("fillers must not be empty when max_fillers or max_leading is positive");
  }
  if (hard_format(o)) {
    if (o.fillers.empty() && o.max_noun_fillers > 0) {
      fail("fillers must not be empty when max_noun_fillers is positive");
    }
    if (o.prepositions.empty()) fail("prepositions must not be empty");
    if (o.singular_inner_verbs.empty() || o.plural_inner_verbs.empty()) {
      fail("singular_inner_verbs and plural_inner_verbs must not be empty");
    }
    if (o.singular_inner_verbs.size() != o.plural_inner_verbs.size()) {
      // Each verb's two forms are a pair: a count that differed would tell the number.
      fail("singular_inner_verbs and plural_inner_verbs must pair up (" +
           std::to_string(o.singular_inner_verbs.size()) + " and " +
           std::to_string(o.plural_inner_verbs.size()) + " given)");
    }
    if (!(o.intro_rate >= 0.0 && o.intro_rate <= 1.0)) {
      fail("intro_rate must be in [0, 1], got " + std::to_string(o.intro_rate));
    }
  }
  return o;  // repeated words are caught by Task's unique-name check
}

// The keys of one format, which are errors in the other.
const std::vector<const char*> simple_keys = {"max_attractors", "max_fillers", "max_leading"};
const std::vector<const char*> hard_keys = {
    "prepositions",  "relative_pronoun", "singular_inner_verbs", "plural_inner_verbs",
    "max_intro",     "intro_rate",       "max_modifiers",        "max_depth",
    "max_noun_fillers"};

AgreementTaskOptions read_agreement_options(const qkv::ConfigNode& node) {
  const bool is_hard =
      node.get_choice("format", {"simple", "hard"}, "simple") == "hard";
  AgreementTaskOptions o = is_hard ? AgreementTaskOptions::hard() : AgreementTaskOptions();
  for (const char* key : is_hard ? simple_keys : hard_keys) {
    if (node.has(key)) {
      node.fail(key, std::string("belongs to format: ") + (is_hard ? "simple" : "hard") +
                         " (this section's format is " + (is_hard ? "hard" : "simple") + ")");
    }
  }
  // Every word is one token: it may appear in one list only.
  std::map<std::string, std::string> owner;  // word -> the key that listed it first
  const auto check_word = [&](const char* key, const std::string& word) {
    node.require(!word.empty() && word.find_first_of(" \t") == std::string::npos &&
                     word != "PAD" && word != "SEP" && word != "EOS",
                 key, "words without spaces, other than PAD, SEP and EOS");
    const auto [it, fresh] = owner.emplace(word, key);
    if (!fresh) {
      node.fail(key, "the word '" + quote_for_message(word) + "' is listed twice (also in " + node.path() + "." +
                         it->second + ")");
    }
  };
  const auto words = [&](const char* key, const std::vector<std::string>& fallback) {
    const auto list = node.get<std::vector<std::string>>(key, fallback);
    for (const std::string& word : list) check_word(key, word);
    return list;
  };
  const auto word = [&](const char* key, const std::string& fallback) {
    const auto value = node.get<std::string>(key, fallback);
    check_word(key, value);
    return value;
  };
  o.singular_nouns = words("singular_nouns", o.singular_nouns);
  node.require(!o.singular_nouns.empty(), "singular_nouns", "at least one noun");
  o.plural_nouns = words("plural_nouns", o.plural_nouns);
  node.require(!o.plural_nouns.empty(), "plural_nouns", "at least one noun");
  o.singular_verb = word("singular_verb", o.singular_verb);
  o.plural_verb = word("plural_verb", o.plural_verb);
  o.fillers = words("fillers", o.fillers);
  if (!is_hard) {
    o.max_attractors = node.get<std::size_t>("max_attractors", o.max_attractors);
    o.max_fillers = node.get<std::size_t>("max_fillers", o.max_fillers);
    o.max_leading = node.get<std::size_t>("max_leading", o.max_leading);
    for (const auto& [key, value] :
         {std::pair{"max_attractors", o.max_attractors}, {"max_fillers", o.max_fillers},
          {"max_leading", o.max_leading}})
      node.require(value <= kMaxPositions, key,
                   "at most " + std::to_string(kMaxPositions) + " (tasks/limits.hpp)");
    node.require(!o.fillers.empty() || (o.max_fillers == 0 && o.max_leading == 0), "fillers",
                 "at least one filler word while max_fillers or max_leading is positive");
    return o;
  }
  o.format = AgreementFormat::hard;
  o.prepositions = words("prepositions", o.prepositions);
  node.require(!o.prepositions.empty(), "prepositions", "at least one preposition");
  o.relative_pronoun = word("relative_pronoun", o.relative_pronoun);
  o.singular_inner_verbs = words("singular_inner_verbs", o.singular_inner_verbs);
  o.plural_inner_verbs = words("plural_inner_verbs", o.plural_inner_verbs);
  node.require(!o.singular_inner_verbs.empty() &&
                   o.plural_inner_verbs.size() == o.singular_inner_verbs.size(),
               "plural_inner_verbs",
               "the plural forms of singular_inner_verbs, as many (" +
                   std::to_string(o.singular_inner_verbs.size()) + ")");
  o.max_intro = node.get<std::size_t>("max_intro", o.max_intro);
  o.intro_rate = node.get<double>("intro_rate", o.intro_rate);
  node.require(o.intro_rate >= 0.0 && o.intro_rate <= 1.0, "intro_rate", "a rate in [0, 1]");
  o.max_modifiers = node.get<std::size_t>("max_modifiers", o.max_modifiers);
  o.max_depth = node.get<std::size_t>("max_depth", o.max_depth);
  o.max_noun_fillers = node.get<std::size_t>("max_noun_fillers", o.max_noun_fillers);
  for (const auto& [key, value] :
       {std::pair{"max_intro", o.max_intro}, {"max_modifiers", o.max_modifiers},
        {"max_depth", o.max_depth}, {"max_noun_fillers", o.max_noun_fillers}})
    node.require(value <= kMaxPositions, key,
                 "at most " + std::to_string(kMaxPositions) + " (tasks/limits.hpp)");
  node.require(!o.fillers.empty() || o.max_noun_fillers == 0, "fillers",
               "at least one filler word while max_noun_fillers is positive");
  return o;
}

// Token layout after PAD, SEP and EOS: singular nouns, plural nouns, the two verbs,
// fillers; hard adds prepositions, the relative pronoun, singular then plural inner verbs.
std::vector<std::string> agreement_tokens(const AgreementTaskOptions& o) {
  std::vector<std::string> names = o.singular_nouns;
  const auto append = [&](const std::vector<std::string>& list) {
    names.insert(names.end(), list.begin(), list.end());
  };
  append(o.plural_nouns);
  names.push_back(o.singular_verb);
  names.push_back(o.plural_verb);
  append(o.fillers);
  if (hard_format(o)) {
    append(o.prepositions);
    names.push_back(o.relative_pronoun);
    append(o.singular_inner_verbs);
    append(o.plural_inner_verbs);
  }
  return names;
}

// The longest prompt: simple, every leading word, attractor and filler; hard, every intro
// phrase, the subject and every modifier at its longest (a relative clause nested to
// max_depth: each level adds the pronoun, a noun phrase and a verb).
std::size_t max_prompt_len(const AgreementTaskOptions& o) {
  if (!hard_format(o)) return o.max_leading + 1 + o.max_attractors + o.max_fillers;
  const std::size_t np = o.max_noun_fillers + 1;
  const std::size_t pp = 1 + np;
  const std::size_t modifier = std::max(pp, o.max_depth * (np + 2));
  return o.max_intro * pp + np + o.max_modifiers * modifier;
}

}  // namespace

AgreementTaskOptions AgreementTaskOptions::hard() {
  AgreementTaskOptions o;
  o.format = AgreementFormat::hard;
  o.fillers = {"the", "old", "big", "red"};
  return o;
}

AgreementTask::AgreementTask(const AgreementTaskOptions& options, LossOn loss_on)
    : GeneratedTask("agreement", agreement_tokens(checked(options)),
                    max_prompt_len(options) + 1, /*max_answer_len=*/1, loss_on),
      options_(options) {
  first_singular_ = own_token(0);
  first_plural_ = first_singular_ + static_cast<Token>(options.singular_nouns.size());
  singular_verb_ = first_plural_ + static_cast<Token>(options.plural_nouns.size());
  plural_verb_ = singular_verb_ + 1;
  first_filler_ = plural_verb_ + 1;
  if (hard_format(options)) {
    first_preposition_ = first_filler_ + static_cast<Token>(options.fillers.size());
    relative_pronoun_ = first_preposition_ + static_cast<Token>(options.prepositions.size());
    first_singular_inner_ = relative_pronoun_ + 1;
    first_plural_inner_ =
        first_singular_inner_ + static_cast<Token>(options.singular_inner_verbs.size());
  }
}

Token AgreementTask::noun(bool plural, core::Rng& rng) const {
  return plural ? first_plural_ + static_cast<Token>(rng.below(options_.plural_nouns.size()))
                : first_singular_ + static_cast<Token>(rng.below(options_.singular_nouns.size()));
}

Token AgreementTask::filler(core::Rng& rng) const {
  return first_filler_ + static_cast<Token>(rng.below(options_.fillers.size()));
}

Example AgreementTask::draw(core::Rng& rng) const {
  return hard_format(options_) ? draw_hard(rng) : draw_simple(rng);
}

Example AgreementTask::draw_simple(core::Rng& rng) const {
  Example example;
  const std::size_t leading = rng.below(options_.max_leading + 1);
  for (std::size_t i = 0; i < leading; ++i) example.prompt.push_back(filler(rng));
  const bool plural_subject = rng.below(2) == 1;
  example.prompt.push_back(noun(plural_subject, rng));

  const std::size_t attractors = rng.below(options_.max_attractors + 1);
  const std::size_t fillers = rng.below(options_.max_fillers + 1);
  std::vector<Token> span;
  for (std::size_t i = 0; i < attractors; ++i) span.push_back(noun(rng.below(2) == 1, rng));
  for (std::size_t i = 0; i < fillers; ++i) span.push_back(filler(rng));
  for (std::size_t i = span.size(); i > 1; --i) std::swap(span[i - 1], span[rng.below(i)]);
  example.prompt.insert(example.prompt.end(), span.begin(), span.end());

  example.answer = {plural_subject ? plural_verb_ : singular_verb_};
  example.group = static_cast<int>(attractors);
  example.distance = static_cast<int>(span.size());
  return example;
}

std::size_t AgreementTask::append_np(bool plural, std::vector<Token>& prompt,
                                     core::Rng& rng) const {
  const std::size_t fillers = rng.below(options_.max_noun_fillers + 1);
  for (std::size_t i = 0; i < fillers; ++i) prompt.push_back(filler(rng));
  prompt.push_back(noun(plural, rng));
  return prompt.size() - 1;
}

void AgreementTask::append_relative(std::size_t depth, std::vector<Token>& prompt,
                                    core::Rng& rng) const {
  prompt.push_back(relative_pronoun_);
  const bool plural = rng.below(2) == 1;
  append_np(plural, prompt, rng);
  if (depth < options_.max_depth && rng.below(2) == 1) append_relative(depth + 1, prompt, rng);
  const Token verb = static_cast<Token>(rng.below(options_.singular_inner_verbs.size()));
  prompt.push_back((plural ? first_plural_inner_ : first_singular_inner_) + verb);
}

Example AgreementTask::draw_hard(core::Rng& rng) const {
  Example example;
  std::vector<Token>& prompt = example.prompt;
  const auto pp = [&] {
    prompt.push_back(first_preposition_ +
                     static_cast<Token>(rng.below(options_.prepositions.size())));
    append_np(rng.below(2) == 1, prompt, rng);
  };
  if (options_.max_intro > 0 && rng.uniform() < options_.intro_rate) {
    const std::size_t intro = 1 + rng.below(options_.max_intro);
    for (std::size_t i = 0; i < intro; ++i) pp();
  }
  const bool plural_subject = rng.below(2) == 1;
  const std::size_t subject = append_np(plural_subject, prompt, rng);
  const std::size_t modifiers = rng.below(options_.max_modifiers + 1);
  for (std::size_t i = 0; i < modifiers; ++i) {
    if (options_.max_depth > 0 && rng.below(2) == 1) append_relative(1, prompt, rng);
    else pp();
  }
  example.answer = {plural_subject ? plural_verb_ : singular_verb_};
  int attractors = 0;
  for (std::size_t i = 0; i < prompt.size(); ++i)
    attractors += i != subject && is_noun(prompt[i]) && is_plural_noun(prompt[i]) != plural_subject;
  example.group = attractors;
  example.distance = static_cast<int>(prompt.size() - 1 - subject);
  return example;
}

std::vector<std::vector<std::size_t>> AgreementTask::answer_sources(
    const std::vector<Token>& prompt) const {
  const auto is_preposition = [&](Token id) {
    return hard_format(options_) && id >= first_preposition_ && id < relative_pronoun_;
  };
  bool in_phrase = false;  // between a preposition and its noun
  for (std::size_t i = 0; i < prompt.size(); ++i) {
    if (is_preposition(prompt[i])) in_phrase = true;
    if (!is_noun(prompt[i])) continue;
    if (!in_phrase) return {{i}};
    in_phrase = false;
  }
  return {};
}

std::unique_ptr<Task> make_agreement_task(const qkv::ConfigNode& options, LossOn loss_on,
                                          const std::string&) {
  return std::make_unique<AgreementTask>(read_agreement_options(options), loss_on);
}

}  // namespace qkv::tasks
