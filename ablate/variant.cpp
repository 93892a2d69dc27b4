// The variant grammar: a name to its canonical form and its config overrides (see
// variant.hpp).
#include "ablate/variant.hpp"

#include <algorithm>
#include <map>
#include <stdexcept>

#include "strict_yaml/closest_match.hpp"

namespace qkv::ablate {

namespace {

const std::string kLetters = "qkvo";
const std::string kAttention = "model.attention.";

// letter -> kind; "merged"/"tied" are held by both q and k.
using Kinds = std::map<char, std::string>;

[[noreturn]] void bad(const std::string& name, const std::string& what,
                      const std::vector<std::string>& candidates);

// Every single-clause name, for the did-you-mean.
std::vector<std::string> candidate_names() {
  std::vector<std::string> names = {"learned", "none", "qk=merged", "qk=tied", "o=none"};
  for (unsigned mask = 1; mask < 16; ++mask) {
    std::string letters;
    for (unsigned i = 0; i < 4; ++i)
      if (mask & (1u << i)) letters += kLetters[i];
    const bool has_o = letters.back() == 'o';
    for (const char* kind : {"learned", "identity", "frozen"})
      if (!has_o || std::string(kind) != "identity") names.push_back(letters + "=" + kind);
  }
  return names;
}

void check_kind(const std::string& name, const std::string& letters, const std::string& kind) {
  if (kind == "merged" || kind == "tied") {
    if (letters != "qk" && letters != "kq")
      bad(name, "'" + kind + "' applies to qk only (" + letters + "=" + kind + ")",
          candidate_names());
    return;
  }
  if (kind == "none") {
    if (letters != "o")
      bad(name, "'none' applies to o only (o=none: no Wo, the heads' concatenation is the output)",
          candidate_names());
    return;
  }
  if (kind != "learned" && kind != "identity" && kind != "frozen")
    bad(name, "unknown kind '" + kind + "'", candidate_names());
}

// One clause "<letters>=<kind>" into `kinds`.
void add_clause(const std::string& name, const std::string& clause, Kinds& kinds) {
  const std::size_t eq = clause.find('=');
  if (eq == std::string::npos) {
    const bool alone = clause == "learned" || clause == "none";
    bad(name, alone ? "'" + clause + "' stands alone, not joined to other clauses with '+'"
                    : "'" + clause + "' is neither learned, none nor <letters>=<kind>",
        candidate_names());
  }
  const std::string letters = clause.substr(0, eq), kind = clause.substr(eq + 1);
  if (letters.empty()) bad(name, "no letters before '=' in '" + clause + "'", candidate_names());
  for (const char letter : letters) {
    if (kLetters.find(letter) == std::string::npos)
      bad(name, std::string("unknown letter '") + letter + "' (letters: q, k, v, o)",
          candidate_names());
    if (kinds.count(letter) != 0 || std::count(letters.begin(), letters.end(), letter) > 1)
      bad(name, std::string("'") + letter + "' is given twice", candidate_names());
  }
  check_kind(name, letters, kind);
  for (const char letter : letters)
    kinds[letter] = letter == 'o' && kind == "identity" ? "none" : kind;
}

// Clauses grouped by kind, in the order of each kind's first letter in q, k, v, o.
std::string canonical(const Kinds& kinds) {
  std::vector<std::pair<std::string, std::string>> groups;  // kind, letters
  for (const char letter : kLetters) {
    const auto it = kinds.find(letter);
    if (it == kinds.end()) continue;
    bool placed = false;
    for (auto& [kind, letters] : groups)
      if (kind == it->second) letters += letter, placed = true;
    if (!placed) groups.push_back({it->second, std::string(1, letter)});
  }
  std::string name;
  for (const auto& [kind, letters] : groups)
    name += (name.empty() ? "" : "+") + letters + "=" + kind;
  return name;
}

std::vector<std::string> overrides_of(const Kinds& kinds) {
  std::vector<std::string> overrides;
  bool qk_form = false;
  for (const auto& [letter, kind] : kinds) {
    if (kind == "merged" || kind == "tied") {
      if (!qk_form) overrides.push_back(kAttention + "qk=" + kind);
      qk_form = true;
      continue;
    }
    overrides.push_back(kAttention + "w" + std::string(1, letter) + "=" + kind);
  }
  return overrides;
}

void bad(const std::string& name, const std::string& what,
         const std::vector<std::string>& candidates) {
  std::string message = "variant '" + name + "': " + what;
  const std::string suggestion = closest_match(name, candidates);
  if (!suggestion.empty()) message += "; did you mean '" + suggestion + "'?";
  throw std::invalid_argument(message + " (" + variant_grammar() + ")");
}

}  // namespace

std::string variant_grammar() {
  return "a variant is learned, none, <letters>=<kind> with letters from q, k, v, o and kind "
         "learned, identity or frozen (o: learned, frozen or none), qk=merged or qk=tied, or "
         "such clauses joined by '+', e.g. v=identity+o=none";
}

Variant parse_variant(const std::string& name) {
  if (name == "learned") return {name, {kAttention + "projections=learned"}};
  if (name == "none") return {name, {kAttention + "projections=none"}};
  if (name.empty()) bad(name, "the name is empty", {});
  Kinds kinds;
  std::size_t start = 0;
  for (;;) {
    const std::size_t plus = name.find('+', start);
    add_clause(name, name.substr(start, plus - start), kinds);
    if (plus == std::string::npos) break;
    start = plus + 1;
  }
  return {canonical(kinds), overrides_of(kinds)};
}

std::vector<Variant> parse_variants(const std::vector<std::string>& names) {
  if (names.empty()) throw std::invalid_argument("no variants given (" + variant_grammar() + ")");
  std::vector<Variant> variants;
  std::map<std::string, std::string> given;  // canonical -> as given
  for (const std::string& name : names) {
    Variant variant = parse_variant(name);
    const auto [it, fresh] = given.emplace(variant.name, name);
    if (!fresh)
      throw std::invalid_argument("variants '" + it->second + "' and '" + name +
                                  "' are the same variant (" + variant.name + ")");
    variants.push_back(std::move(variant));
  }
  return variants;
}

const std::vector<std::string>& default_variant_names() {
  static const std::vector<std::string> names = {
      "learned",    "none",      "q=identity", "k=identity", "qk=identity",
      "v=identity", "qk=frozen", "qk=merged",  "qk=tied"};
  return names;
}

}  // namespace qkv::ablate
