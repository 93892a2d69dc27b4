// Tasks: generators of training and evaluation batches for a causal language model.
//
// Every example is a prompt, the separator SEP, and an answer. The model reads
// `prompt SEP answer` and predicts each next token: the answer, then the end token EOS,
// so that generation (train/generate.hpp) stops on its own however long the answer is.
// By default only the answer positions, EOS included, count for the loss and the
// accuracy (`loss_on: all` counts every real position). Token ids: 0 is PAD, 1 is SEP,
// 2 is EOS, the task's own tokens follow (first_own_id).
//
//   copy       answer = the prompt                  a c f b SEP a c f b EOS
//   reverse    answer = the prompt reversed         a c f b SEP b f c a EOS
//   sort       answer = the prompt sorted           a c f b SEP a b c f EOS
//   agreement  answer = the verb agreeing with the subject, whatever the nouns (attractors)
//              around it say; format simple: the subject is the first noun; format hard:
//              after prepositional phrases, before nested relative clauses
//                                                   the keys near the cat SEP are EOS
//                                       near the dog the keys that the boy sees SEP are EOS
//   induction  distinct random tokens, then one of them again (the cue); answer = the cue
//              and the tokens that followed its earlier occurrence
//                                                   c f a h d b a SEP a h d EOS
//   recall     key-value pairs, then query keys; answer = each queried key's value
//                                                   a 3 c 1 f 7 c a SEP 1 3 EOS
//   file       the user's examples, one per line: prompt tokens TAB answer tokens
//
// Held-out evaluation: generated tasks split their example space in two by a hash of the
// prompt (1 in 16 prompts is an evaluation prompt). Training never draws an evaluation
// prompt, so eval accuracy is measured on prompts the model has never seen, even when the
// space is small enough that random draws would repeat. Evaluation examples come from
// their own stream (Rng(seed).split(eval_stream)), so they are the same set at every
// evaluation of a run. The file task evaluates on its eval file, or, without one, on the
// training examples (then it measures fit, not generalization).
//
// Each task is one file (copy.hpp, ..., file.hpp) and a registered type (registry.hpp):
//
//   auto task = make_task(root.section("task", "copy"), LossOn::answer);
//   core::Rng rng(seed);
//   Batch batch = task->sample(32, rng);                     // (32, T) ids and masks
//   Batch eval = task->make_batch(task->eval_examples(512, seed));
//   std::cout << task->decode(eval.inputs.values) << "\n";   // "a c f b SEP a c f b"
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/ops.hpp"
#include "core/random.hpp"
#include "tasks/loss_on.hpp"

namespace qkv::tasks {

using Token = std::int32_t;

struct Example {
  std::vector<Token> prompt;
  std::vector<Token> answer;
  int group = -1;  // the task's group label (agreement: attractor count); -1 if none
  // How many prompt tokens lie between the answer's source and the end of the prompt
  // (agreement: words after the subject; induction: after the cue's earlier occurrence),
  // so evaluation can report accuracy by distance; -1 if the task does not say.
  int distance = -1;
  std::size_t line = 0;  // the data file's line it was read from (1-based); 0 if generated
};

// A padded batch. Row b holds `prompt SEP answer` as inputs and the same sequence shifted
// by one, `answer EOS` after the prompt, as targets, right-padded with PAD to the batch's T.
struct Batch {
  core::Ids inputs;                       // (B, T)
  core::Ids targets;                      // (B, T): the next token at each position
  std::vector<std::uint8_t> mask;         // (B*T): 1 where the position counts for the loss
  std::vector<std::uint8_t> answer_mask;  // (B*T): 1 where the target is an answer token
  std::vector<int> groups;                // (B): Example::group, empty if the task has none
  std::vector<int> distances;             // (B): Example::distance, empty if no example has one

  std::size_t batch_size() const { return inputs.shape.empty() ? 0 : inputs.shape[0]; }
  std::size_t seq_len() const { return inputs.shape.size() < 2 ? 0 : inputs.shape[1]; }
};

class Task {
 public:
  static constexpr Token pad_id = 0;
  static constexpr Token sep_id = 1;
  static constexpr Token eos_id = 2;        // the end of an answer
  static constexpr Token first_own_id = 3;  // the task's own tokens follow PAD, SEP, EOS
  // Stream id of the held-out evaluation examples (Rng(seed).split(eval_stream)).
  static constexpr std::uint64_t eval_stream = 0x6576616c;  // "eval"

  virtual ~Task() = default;
  Task(const Task&) = delete;
  Task& operator=(const Task&) = delete;

  const std::string& name() const { return name_; }
  LossOn loss_on() const { return loss_on_; }
  std::size_t vocab_size() const { return token_names_.size(); }
  // The longest input row T of any example (prompt + SEP + answer, the EOS being only a
  // target): the model's positional table must hold at least this many positions.
  std::size_t max_seq_len() const { return max_seq_len_; }
  // The longest answer of any example (without its EOS), or a bound on it for a task that
  // does not say (max_seq_len() - 2: what a one-token prompt leaves).
  std::size_t max_answer_len() const { return max_answer_len_; }

  // id -> printable name ("PAD", "SEP", "EOS", "a", "cat", ...), and back.
  const std::vector<std::string>& token_names() const { return token_names_; }
  const std::string& token_name(Token id) const;  // throws std::out_of_range
  // Space-separated names <-> ids; encode throws std::invalid_argument on an unknown name.
  std::string decode(const std::vector<Token>& ids) const;
  std::vector<Token> encode(const std::string& text) const;

  // A training batch of `batch_size` examples drawn from rng (never an evaluation prompt).
  Batch sample(std::size_t batch_size, core::Rng& rng) const;
  // `count` held-out examples, the same ones for the same seed.
  virtual std::vector<Example> eval_examples(std::size_t count, std::uint64_t seed) const = 0;
  // Packs examples into one padded batch (masks follow loss_on()).
  Batch make_batch(const std::vector<Example>& examples) const;

  // Examples from a text file in the file task's format, encoded with this task's tokens
  // (e.g. hand-written copy prompts for `qkv eval --data`). Errors (std::invalid_argument)
  // name the file and line: a missing TAB, an empty side, an unknown token, an example
  // longer than max_seq_len(). Each example's `line` is its line in the file.
  std::vector<Example> read_examples(const std::string& path) const;

  // What Example::group counts ("attractors"), or "" when the task has no groups.
  virtual std::string group_name() const { return ""; }

  // Where each answer token is read from, for inspection (`qkv inspect` scores how much a
  // head attends there): entry j lists the prompt positions that answer token j of
  // `prompt`'s right answer comes from (copy: j; reverse: L-1-j; sort: every position
  // holding that token; agreement: the subject; recall: the queried key's value). Answer
  // tokens past the returned entries (an end token) have no source. Empty when the task
  // does not say (the file task) or the prompt has no answer source.
  virtual std::vector<std::vector<std::size_t>> answer_sources(
      const std::vector<Token>& prompt) const {
    (void)prompt;
    return {};
  }

  // What must be saved with a checkpoint to rebuild this exact task (the file task's
  // vocabulary and lengths); "" for generated tasks. Pass it back to make_task
  // (tasks/registry.hpp).
  virtual std::string state() const { return ""; }

 protected:
  // `tokens` are the task's own token names (PAD, SEP and EOS are prepended); every name
  // must be unique and not "PAD", "SEP" or "EOS". `max_example_len` is the longest
  // prompt + answer of any example (max_seq_len() is one more: SEP); `max_answer_len` the
  // longest answer, by default the bound max_example_len - 1.
  Task(std::string name, const std::vector<std::string>& tokens, std::size_t max_example_len,
       LossOn loss_on);
  Task(std::string name, const std::vector<std::string>& tokens, std::size_t max_example_len,
       std::size_t max_answer_len, LossOn loss_on);

  // One training example (generated tasks: never an evaluation prompt).
  virtual Example draw_training(core::Rng& rng) const = 0;

 private:
  std::string name_;
  std::vector<std::string> token_names_;
  std::map<std::string, Token> ids_;  // name -> id
  std::size_t max_seq_len_;
  std::size_t max_answer_len_;
  LossOn loss_on_;
};

}  // namespace qkv::tasks
