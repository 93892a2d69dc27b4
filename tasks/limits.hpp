// The upper bounds of every task size a config or a data file can set. Sizes go straight
// to allocation (a token name per symbol, a position per token), so a typo of a few zeros
// must be an error naming the key, not an out-of-memory kill or a hang. The bounds are far
// above what a model trained on a CPU can use; train::load_config checks every task (a
// user's too) against kMaxOwnTokens and kMaxPositions once it is made, and each built-in
// task's reader checks its own keys before it allocates anything.
//
//   node.require(o.symbols <= kMaxOwnTokens, "symbols", "at most 100000 symbols");
#pragma once

#include <cstddef>

namespace qkv::tasks {

// A task's own tokens (PAD, SEP and EOS not counted): symbols, keys plus values, words,
// the distinct tokens of a training file.
constexpr std::size_t kMaxOwnTokens = 100000;
// Positions of one example (prompt, SEP, answer: Task::max_seq_len()), and the bound of
// each length key (min_len, max_len, pairs, max_attractors, ...).
constexpr std::size_t kMaxPositions = 4096;

// A data file of the file task (or of `qkv eval --data`): its size, the bytes of one
// line, and its lines (blank ones included).
constexpr std::size_t kMaxDataFileBytes = 16u << 20;
constexpr std::size_t kMaxDataLineBytes = 64u << 10;
constexpr std::size_t kMaxDataLines = 1000000;

}  // namespace qkv::tasks
