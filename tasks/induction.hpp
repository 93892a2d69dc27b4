// InductionTask: finish a repeated segment (the induction head of Olsson et al. 2022,
// [A][B] … [A] → [B]). The prompt is min_len..max_len distinct random tokens (the context,
// so each token has one successor), then one of them again: the cue A. The answer restates
// the cue, then gives the `continuation` tokens that followed its occurrence in the
// context:
//
//   c f a h d b a SEP a h d EOS     (cue a, continuation 2)
//
// Each answer token after the first is predicted at a position holding a repeated token,
// which is the induction step itself: find the earlier occurrence of the current token,
// read the token after it. With a token embedding and a position per row, one attention
// layer cannot do it (a key knows its own token, not the one before it); two can: a
// previous-token head writes each token's predecessor into its position, and a second
// head matches the current token against those. Restating the cue first keeps the
// separator out of the lookup (the answer's first token is the previous token, one step
// back); predicting B at SEP would need the cue moved onto SEP first, the extra hop that
// stalls recall (configs/recall.yaml).
//
// The cue is chosen among the context positions that have `continuation` successors.
// Example::distance is how many prompt tokens follow the cue's earlier occurrence (how far
// back the lookup reaches); there are no groups. Tokens are named a..z (s0, s1, ... beyond
// 26 symbols).
//
//   task: {type: induction, symbols: 16, min_len: 8, max_len: 12, continuation: 2}
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "strict_yaml/config_node.hpp"
#include "tasks/generated.hpp"

namespace qkv::tasks {

struct InductionTaskOptions {
  std::size_t symbols = 16;
  std::size_t min_len = 8;       // context length, uniform in [min_len, max_len]
  std::size_t max_len = 12;      // at most symbols: the context's tokens are distinct
  std::size_t continuation = 2;  // tokens after the restated cue; < min_len
};

class InductionTask : public GeneratedTask {
 public:
  // Throws std::invalid_argument unless continuation >= 1, continuation < min_len <=
  // max_len <= symbols.
  InductionTask(const InductionTaskOptions& options, LossOn loss_on);
  // Answer token 0 (the cue) comes from both places holding it; token j >= 1 from the
  // j-th position after the cue's occurrence in the context.
  std::vector<std::vector<std::size_t>> answer_sources(
      const std::vector<Token>& prompt) const override;

 protected:
  Example draw(core::Rng& rng) const override;

 private:
  InductionTaskOptions options_;
};

// The `induction` type (registry.hpp): the keys symbols, min_len, max_len and
// continuation, a ConfigError at the key unless 1 <= continuation < min_len <= max_len <=
// symbols. No state.
std::unique_ptr<Task> make_induction_task(const qkv::ConfigNode& options, LossOn loss_on,
                                          const std::string& state);

}  // namespace qkv::tasks
