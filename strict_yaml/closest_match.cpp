// closest_match: edit distance with transpositions, and a prefix fallback.
#include "strict_yaml/closest_match.hpp"

#include <algorithm>
#include <cctype>
#include <limits>

namespace qkv {

namespace {

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Optimal string alignment distance (Levenshtein plus adjacent transpositions, so
// "weigth" is one edit from "weight"), on words of at most kMaxWordLength letters: the
// table is (n + 1) x (m + 1), and a 4 MB key once made it take 900 MB.
std::size_t edit_distance(const std::string& a, const std::string& b) {
  const std::size_t n = a.size(), m = b.size();
  std::vector<std::vector<std::size_t>> d(n + 1, std::vector<std::size_t>(m + 1));
  for (std::size_t i = 0; i <= n; ++i) d[i][0] = i;
  for (std::size_t j = 0; j <= m; ++j) d[0][j] = j;
  for (std::size_t i = 1; i <= n; ++i) {
    for (std::size_t j = 1; j <= m; ++j) {
      const std::size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[n][m];
}

// No key, type or command name is longer; a longer word is no misspelling of one.
constexpr std::size_t kMaxWordLength = 64;

}  // namespace

std::string closest_match(const std::string& word, const std::vector<std::string>& candidates) {
  // Close enough: about one edit per three letters (at least two), and never a distance
  // that rewrites the whole word ("lr" is not a misspelling of "wd"). Failing that, a
  // shortened key ("warmup" for "warmup_steps") suggests the shortest key it begins.
  if (word.size() > kMaxWordLength) return "";
  const std::string w = lower(word);
  const std::size_t limit = std::max<std::size_t>(2, w.size() / 3);
  std::string best;
  std::size_t best_distance = std::numeric_limits<std::size_t>::max();
  for (const auto& candidate : candidates) {
    if (candidate.size() > kMaxWordLength) continue;
    const std::size_t d = edit_distance(w, lower(candidate));
    if (d <= limit && d < std::max(w.size(), candidate.size()) && d < best_distance) {
      best = candidate;
      best_distance = d;
    }
  }
  if (best.empty() && w.size() >= 3) {
    for (const auto& candidate : candidates) {
      if (candidate.size() <= kMaxWordLength && lower(candidate).compare(0, w.size(), w) == 0 &&
          (best.empty() || candidate.size() < best.size())) {
        best = candidate;
      }
    }
  }
  return best;
}

}  // namespace qkv
