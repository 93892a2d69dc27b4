// closest_match: the "did you mean" of every error in qkv (config keys, layer and task
// types, tensor names, command names).
//
//   closest_match("weigth", {"weight", "bias"})   // "weight"
//   closest_match("lr", {"wd"})                     // "" (nothing close enough)
#pragma once

#include <string>
#include <vector>

namespace qkv {

// The closest candidate to `word` by edit distance (about one edit per three letters, at
// least two), else the shortest candidate that `word` begins (3+ letters), else "". Words
// and candidates longer than 64 bytes are never matched (no name is that long), so the
// work stays small whatever a user typed.
std::string closest_match(const std::string& word, const std::vector<std::string>& candidates);

}  // namespace qkv
