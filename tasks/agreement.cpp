// AgreementTask: the verb agrees with the first noun, not with the attractors after it;
// its options read from the config.
#include "tasks/agreement.hpp"

#include <map>
#include <stdexcept>

namespace qkv::tasks {

namespace {

const AgreementTaskOptions& checked(const AgreementTaskOptions& o) {
  const auto fail = [](const std::string& what) {
    throw std::invalid_argument("task agreement: " + what);
  };
  if (o.singular_nouns.empty()) fail("singular_nouns must not be empty");
  if (o.plural_nouns.empty()) fail("plural_nouns must not be empty");
  if (o.fillers.empty() && (o.max_fillers > 0 || o.max_leading > 0)) {
    fail("fillers must not be empty when max_fillers or max_leading is positive");
  }
  return o;  // repeated words are caught by Task's unique-name check
}

AgreementTaskOptions read_agreement_options(const qkv::ConfigNode& node) {
  AgreementTaskOptions o;
  // Every word is one token: it may appear in one list only.
  std::map<std::string, std::string> owner;  // word -> the key that listed it first
  const auto check_word = [&](const char* key, const std::string& word) {
    node.require(!word.empty() && word.find_first_of(" \t") == std::string::npos &&
                     word != "PAD" && word != "SEP" && word != "EOS",
                 key, "words without spaces, other than PAD, SEP and EOS");
    const auto [it, fresh] = owner.emplace(word, key);
    if (!fresh) {
      node.fail(key, "the word '" + word + "' is listed twice (also in " + node.path() + "." +
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
  o.max_attractors = node.get<std::size_t>("max_attractors", o.max_attractors);
  o.max_fillers = node.get<std::size_t>("max_fillers", o.max_fillers);
  o.max_leading = node.get<std::size_t>("max_leading", o.max_leading);
  node.require(!o.fillers.empty() || (o.max_fillers == 0 && o.max_leading == 0), "fillers",
               "at least one filler word while max_fillers or max_leading is positive");
  return o;
}

// Token layout after PAD, SEP and EOS: singular nouns, plural nouns, the two verbs, fillers.
std::vector<std::string> agreement_tokens(const AgreementTaskOptions& o) {
  std::vector<std::string> names = o.singular_nouns;
  names.insert(names.end(), o.plural_nouns.begin(), o.plural_nouns.end());
  names.push_back(o.singular_verb);
  names.push_back(o.plural_verb);
  names.insert(names.end(), o.fillers.begin(), o.fillers.end());
  return names;
}

}  // namespace

AgreementTask::AgreementTask(const AgreementTaskOptions& options, LossOn loss_on)
    : GeneratedTask("agreement", agreement_tokens(checked(options)),
                    options.max_leading + 1 + options.max_attractors + options.max_fillers + 1,
                    /*max_answer_len=*/1, loss_on),
      options_(options) {
  first_singular_ = own_token(0);
  first_plural_ = first_singular_ + static_cast<Token>(options.singular_nouns.size());
  singular_verb_ = first_plural_ + static_cast<Token>(options.plural_nouns.size());
  plural_verb_ = singular_verb_ + 1;
  first_filler_ = plural_verb_ + 1;
}

Example AgreementTask::draw(core::Rng& rng) const {
  const auto noun = [&](bool plural) {
    return plural ? first_plural_ + static_cast<Token>(rng.below(options_.plural_nouns.size()))
                  : first_singular_ +
                        static_cast<Token>(rng.below(options_.singular_nouns.size()));
  };
  const auto filler = [&] {
    return first_filler_ + static_cast<Token>(rng.below(options_.fillers.size()));
  };
  Example example;
  const std::size_t leading = rng.below(options_.max_leading + 1);
  for (std::size_t i = 0; i < leading; ++i) example.prompt.push_back(filler());
  const bool plural_subject = rng.below(2) == 1;
  example.prompt.push_back(noun(plural_subject));

  const std::size_t attractors = rng.below(options_.max_attractors + 1);
  const std::size_t fillers = rng.below(options_.max_fillers + 1);
  std::vector<Token> span;
  for (std::size_t i = 0; i < attractors; ++i) span.push_back(noun(rng.below(2) == 1));
  for (std::size_t i = 0; i < fillers; ++i) span.push_back(filler());
  for (std::size_t i = span.size(); i > 1; --i) std::swap(span[i - 1], span[rng.below(i)]);
  example.prompt.insert(example.prompt.end(), span.begin(), span.end());

  example.answer = {plural_subject ? plural_verb_ : singular_verb_};
  example.group = static_cast<int>(attractors);
  return example;
}

std::vector<std::vector<std::size_t>> AgreementTask::answer_sources(
    const std::vector<Token>& prompt) const {
  for (std::size_t i = 0; i < prompt.size(); ++i)
    if (prompt[i] >= first_singular_ && prompt[i] < singular_verb_) return {{i}};
  return {};
}

std::unique_ptr<Task> make_agreement_task(const qkv::ConfigNode& options, LossOn loss_on,
                                          const std::string&) {
  return std::make_unique<AgreementTask>(read_agreement_options(options), loss_on);
}

}  // namespace qkv::tasks
