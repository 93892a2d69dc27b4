// shell_word (internal to app/): a word as a POSIX shell reads it back, for the command
// lines qkv prints to continue what it stopped (qkv train --resume, qkv ablate): as it is
// when it is plain, else single-quoted.
//
//   shell_word("runs/copy")         // runs/copy
//   shell_word("optim.lr=3e-4 x")   // 'optim.lr=3e-4 x'
#pragma once

#include <string>

namespace qkv::app {

inline std::string shell_word(const std::string& word) {
  if (!word.empty() && word.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                              "0123456789_./-=:,+@%") == std::string::npos)
    return word;
  std::string quoted = "'";
  for (const char c : word) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return quoted + "'";
}

}  // namespace qkv::app
