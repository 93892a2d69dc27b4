// generate: greedy is the argmax at every step, top-k 1 is greedy, a seed fixes the samples,
// sampling follows softmax(logits / T), generation stops at EOS or its limits, greedy
// generation agrees with evaluate's exact match, and bad prompts are named.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "core/random.hpp"
#include "layers/build_model.hpp"
#include "tasks/registry.hpp"
#include "tests/run_util.hpp"
#include "train/config.hpp"
#include "train/evaluate.hpp"
#include "train/generate.hpp"
#include "train/trainer.hpp"

using qkv::core::Rng;
using qkv::tasks::Task;
using qkv::tasks::Token;
using qkv::train::Generation;
using qkv::train::GenerateOptions;
using qkv::train::generate;
using qkv::train::parse_prompt;

namespace {

std::unique_ptr<Task> copy_task(std::size_t max_len = 5) {
  const qkv::ConfigNode root = qkv::ConfigNode::parse(
      "task: {type: copy, symbols: 6, min_len: 2, max_len: " + std::to_string(max_len) + "}",
      "test.yaml");
  return qkv::tasks::make_task(root.section("task", "copy"), qkv::tasks::LossOn::answer);
}

// An untrained model: its answers are arbitrary but fixed by the seed.
std::shared_ptr<qkv::layers::Transformer> random_model(const Task& task, std::uint64_t seed = 3) {
  Rng rng(seed);
  const qkv::ConfigNode root =
      qkv::ConfigNode::parse("model: {d_model: 16, heads: 2, layers: 2, d_ff: 32}", "test");
  return qkv::layers::build_model(qkv::layers::read_transformer_options(root.child("model")),
                                  task.vocab_size(), task.max_seq_len(), rng);
}

// The argmax of the model's logits at the last position of `sequence`, computed here.
Token argmax_after(qkv::layers::Transformer& model, const std::vector<Token>& sequence) {
  qkv::core::NoGrad no_grad;
  const qkv::core::Tensor logits = model.forward({{1, sequence.size()}, sequence});
  const std::vector<double> all = logits.to_vector();
  const std::size_t V = model.vocab();
  const auto last = all.begin() + static_cast<std::ptrdiff_t>((sequence.size() - 1) * V);
  return static_cast<Token>(std::max_element(last, last + static_cast<std::ptrdiff_t>(V)) - last);
}

// Makes the model's logits the head's bias alone, peaked on `token`.
void always_predict(qkv::layers::Transformer& model, Token token) {
  std::vector<float> bias(model.vocab(), 0.0f);
  bias[static_cast<std::size_t>(token)] = 5.0f;
  for (auto& param : model.named_parameters()) {
    if (param.name == "head.weight") param.tensor.fill_(0.0);
    if (param.name == "head.bias")
      param.tensor.copy_(qkv::core::Tensor::from_vector(bias, {model.vocab()}));
  }
}

}  // namespace

TEST_CASE("generate: greedy takes the argmax at every step, and top-k 1 is greedy") {
  const auto task = copy_task();
  for (std::uint64_t seed : {3u, 4u, 5u}) {
    CAPTURE(seed);
    auto model = random_model(*task, seed);
    model->eval();
    for (const std::string text : {"a b", "c a f e", "f f f f f"}) {
      CAPTURE(text);
      const std::vector<Token> prompt = parse_prompt(*task, text);
      Rng rng(1);
      const Generation greedy = generate(*model, *task, prompt, GenerateOptions{}, rng);
      // Replayed here, step by step, from the logits of each prefix.
      std::vector<Token> sequence = prompt;
      sequence.push_back(Task::sep_id);
      for (Token token : greedy.answer) {
        CHECK(argmax_after(*model, sequence) == token);
        sequence.push_back(token);
      }
      if (greedy.ended)
        CHECK(argmax_after(*model, sequence) == Task::eos_id);
      else  // stopped at the default limit, the longest answer and its EOS
        CHECK(greedy.answer.size() == task->max_answer_len() + 1);
      CHECK(greedy.read.size() == prompt.size() + 1 + greedy.answer.size() - !greedy.ended);

      GenerateOptions top1;
      top1.temperature = 1.0;
      top1.top_k = 1;
      Rng untouched(1);
      const Generation first = generate(*model, *task, prompt, top1, untouched);
      CHECK(first.answer == greedy.answer);
      CHECK(first.ended == greedy.ended);
      CHECK(untouched.state() == Rng(1).state());  // nothing was drawn
    }
  }
}

TEST_CASE("generate: a seed fixes the samples, and other seeds give others") {
  const auto task = copy_task();
  auto model = random_model(*task);
  const std::vector<Token> prompt = parse_prompt(*task, "a b c");
  GenerateOptions options;
  options.temperature = 2.0;
  options.max_tokens = 6;
  std::set<std::vector<Token>> answers;
  for (std::uint64_t seed = 0; seed < 8; ++seed) {
    Rng a(seed), b(seed);
    const Generation first = generate(*model, *task, prompt, options, a);
    const Generation again = generate(*model, *task, prompt, options, b);
    CHECK(first.answer == again.answer);
    CHECK(first.ended == again.ended);
    CHECK(a.state() == b.state());
    answers.insert(first.answer);
  }
  CHECK(answers.size() > 4);  // at temperature 2 an untrained model's answers vary
}

TEST_CASE("generate: sampling draws from softmax(logits / T) among the top k") {
  const std::vector<double> logits = {0.0, 1.0, 2.0, -1.0, 2.0};
  for (const double temperature : {0.5, 1.0, 3.0}) {
    for (const std::size_t top_k : {std::size_t(0), std::size_t(3)}) {
      CAPTURE(temperature);
      CAPTURE(top_k);
      // Expected: the top-k logits (ties kept by lower id: 2, 4, then 1), renormalized.
      std::vector<std::size_t> kept = {0, 1, 2, 3, 4};
      if (top_k == 3) kept = {1, 2, 4};
      std::map<std::size_t, double> expected;
      double total = 0;
      for (std::size_t id : kept) total += std::exp(logits[id] / temperature);
      for (std::size_t id : kept) expected[id] = std::exp(logits[id] / temperature) / total;

      GenerateOptions options;
      options.temperature = temperature;
      options.top_k = top_k;
      Rng rng(11);
      std::map<std::size_t, double> counts;
      const int draws = 40000;
      for (int i = 0; i < draws; ++i)
        counts[static_cast<std::size_t>(qkv::train::choose_token(logits, options, rng))] += 1;
      for (const auto& [id, count] : counts) {
        CAPTURE(id);
        REQUIRE(expected.count(id) == 1);  // never a token outside the top k
        // Four standard deviations of a binomial proportion.
        const double p = expected[id];
        CHECK(std::abs(count / draws - p) < 4 * std::sqrt(p * (1 - p) / draws) + 1e-9);
      }
    }
  }
  // Greedy ties go to the lowest id, as evaluate's argmax.
  Rng rng(0);
  CHECK(qkv::train::choose_token(logits, GenerateOptions{}, rng) == 2);
}

TEST_CASE("generate: EOS ends the answer; max_tokens and the model's positions bound it") {
  const auto task = copy_task(4);  // max_seq_len 9, max_answer_len 4
  auto model = random_model(*task);
  Rng rng(0);
  const std::vector<Token> prompt = parse_prompt(*task, "a b");
  SUBCASE("EOS first: an empty answer") {
    always_predict(*model, Task::eos_id);
    const Generation g = generate(*model, *task, prompt, GenerateOptions{}, rng);
    CHECK(g.answer.empty());
    CHECK(g.ended);
    CHECK(g.read == std::vector<Token>{prompt[0], prompt[1], Task::sep_id});
  }
  SUBCASE("never EOS: the task's longest answer + 1, or max_tokens") {
    const Token c = parse_prompt(*task, "c").at(0);
    always_predict(*model, c);
    const Generation g = generate(*model, *task, prompt, GenerateOptions{}, rng);
    CHECK(g.answer == std::vector<Token>(task->max_answer_len() + 1, c));
    CHECK_FALSE(g.ended);
    CHECK(g.read.size() == prompt.size() + 1 + g.answer.size() - 1);
    GenerateOptions two;
    two.max_tokens = 2;
    CHECK(generate(*model, *task, prompt, two, rng).answer == std::vector<Token>{c, c});
    // A long prompt leaves the model's positions for fewer tokens than asked.
    GenerateOptions many;
    many.max_tokens = 100;
    const std::vector<Token> long_prompt = parse_prompt(*task, "a b c d e f");
    CHECK(generate(*model, *task, long_prompt, many, rng).answer.size() ==
          task->max_seq_len() - long_prompt.size());
  }
  SUBCASE("the model's training mode is kept") {
    model->train(true);
    generate(*model, *task, prompt, GenerateOptions{}, rng);
    CHECK(model->is_training());
  }
}

TEST_CASE("generate: bad prompts and options are named") {
  const auto task = copy_task(4);
  auto model = random_model(*task);
  Rng rng(0);
  CHECK_THROWS_WITH_AS(parse_prompt(*task, "a zz b"),
                       "prompt: unknown token 'zz'; the copy task's tokens are: a b c d e f",
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(parse_prompt(*task, "a SEP"),
                       doctest::Contains("prompt: 'SEP' is not a prompt token"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(parse_prompt(*task, "  "),
                       doctest::Contains("prompt: it is empty; the copy task's tokens are: a b"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(generate(*model, *task, parse_prompt(*task, "a b c d e f a b c"),
                                GenerateOptions{}, rng),
                       "generate: the prompt has 9 tokens; the model reads at most 9 positions, "
                       "SEP included, so at most 8 prompt tokens",
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(generate(*model, *task, {Task::sep_id}, GenerateOptions{}, rng),
                       doctest::Contains("prompt token 0 has id 1, not one of the copy task's "
                                         "own tokens (ids 3..8)"),
                       std::invalid_argument);
  GenerateOptions negative;
  negative.temperature = -1;
  CHECK_THROWS_WITH_AS(generate(*model, *task, {3}, negative, rng),
                       doctest::Contains("the temperature must be 0 (greedy) or positive"),
                       std::invalid_argument);
  auto smaller = random_model(*copy_task(4));
  const qkv::ConfigNode root = qkv::ConfigNode::parse(
      "task: {type: copy, symbols: 9, min_len: 2, max_len: 4}", "test.yaml");
  const auto nine = qkv::tasks::make_task(root.section("task", "copy"), qkv::tasks::LossOn::answer);
  CHECK_THROWS_WITH_AS(generate(*smaller, *nine, {3}, GenerateOptions{}, rng),
                       "generate: the model has 9 output tokens; the copy task has 12",
                       std::invalid_argument);
}

TEST_CASE("generate: greedy generation reproduces exactly the examples evaluate counts right") {
  // A copy model stopped halfway: some held-out examples right, some wrong.
  const std::string dir = qkv::test::fresh_dir("generate_vs_evaluate");
  qkv::train::TrainerOptions options;
  options.out_dir = dir;
  options.out = nullptr;
  qkv::train::Trainer trainer(qkv::train::parse_config(R"(name: half
seed: 2
task: {type: copy, symbols: 6, min_len: 2, max_len: 5}
model: {d_model: 32, heads: 2, layers: 2, d_ff: 64}
optim: {type: adam, lr: 0.003}
train: {steps: 60, batch_size: 32, eval_every: 60, eval_samples: 64}
)", dir + "/half.yaml"), options);
  trainer.run();
  const Task& task = trainer.task();
  std::size_t right = 0, wrong = 0;
  for (const qkv::tasks::Example& example : task.eval_examples(80, 9)) {
    const qkv::train::EvalResult one = qkv::train::evaluate(
        trainer.model(), task, qkv::train::make_eval_batches(task, {example}));
    Rng rng(0);
    const Generation g = generate(trainer.model(), task, example.prompt, GenerateOptions{}, rng);
    const bool reproduced = g.ended && g.answer == example.answer;
    CAPTURE(task.decode(example.prompt));
    CAPTURE(task.decode(g.answer));
    CHECK(reproduced == (one.seq_acc == 1.0));
    (reproduced ? right : wrong) += 1;
  }
  CHECK(right > 0);  // both kinds were compared
  CHECK(wrong > 0);
}
