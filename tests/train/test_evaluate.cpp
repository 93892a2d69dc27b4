// evaluate: accuracy and loss on answer positions, checked against a model whose
// prediction is known (a function of the current token alone), and per-group results that
// add up.
#include <doctest/doctest.h>

#include <cmath>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/random.hpp"
#include "layers/build_model.hpp"
#include "tasks/registry.hpp"
#include "train/evaluate.hpp"
#include "tasks/task.hpp"

using qkv::core::Rng;
using qkv::tasks::Batch;
using qkv::train::EvalResult;
using qkv::tasks::LossOn;

namespace {

std::shared_ptr<qkv::layers::Transformer> small_model(const qkv::tasks::Task& task,
                                                      std::size_t d_model = 8) {
  Rng rng(4);
  const qkv::ConfigNode root = qkv::ConfigNode::parse(
      "model: {d_model: " + std::to_string(d_model) + ", heads: 2, layers: 1, d_ff: 16}", "test");
  return qkv::layers::build_model(qkv::layers::read_transformer_options(root.child("model")),
                                  task.vocab_size(), task.max_seq_len(), rng);
}

// The task a `task:` section in YAML describes.
std::unique_ptr<qkv::tasks::Task> task_from(const std::string& yaml) {
  return qkv::tasks::make_task(qkv::ConfigNode::parse(yaml, "test").section("task", "copy"),
                               LossOn::answer);
}

// Makes `model` predict next[x] at every position whose input token is x, whatever came
// before, with logit `a` for next[x] and 0 for every other token; returns a. The blocks add
// nothing (zero wo and fc2), positions add nothing, token x embeds as the one-hot e_x and
// the head reads it back. Layer norm maps e_x to a·e_x - b·1 (a, b > 0 fixed by C); the
// last embedding column, zero for every token, carries minus each head row's sum, so the
// b·1 term cancels. Needs C > V.
double predict_from_current_token(qkv::layers::Transformer& model,
                                  const std::vector<qkv::tasks::Token>& next) {
  const std::size_t V = next.size();
  const std::size_t C = model.d_model();
  REQUIRE(C > V);
  std::vector<float> embedding(V * C, 0.0f), head(V * C, 0.0f);
  for (std::size_t x = 0; x < V; ++x) {
    embedding[x * C + x] = 1.0f;
    const auto y = static_cast<std::size_t>(next[x]);
    head[y * C + x] = 1.0f;
    head[y * C + C - 1] -= 1.0f;
  }
  for (auto& param : model.named_parameters()) {
    const std::string& name = param.name;
    if (name == "tok_emb.weight")
      param.tensor.copy_(qkv::core::Tensor::from_vector(embedding, {V, C}));
    else if (name == "head.weight")
      param.tensor.copy_(qkv::core::Tensor::from_vector(head, {V, C}));
    else if (name == "head.bias" || name == "pos_emb.weight" ||
             name.find(".attn.wo.") != std::string::npos ||
             name.find(".ffn.fc2.") != std::string::npos)
      param.tensor.fill_(0.0);
  }
  const double mean = 1.0 / double(C);
  const double variance = mean * (1 - mean);  // of a one-hot row
  return 1.0 / std::sqrt(variance + 1e-5);    // layer norm's eps
}

}  // namespace

TEST_CASE("evaluate: a model that predicts from the current token scores what the targets say") {
  std::string section;
  std::string favourite_name;
  SUBCASE("copy: answers of several tokens") {
    section = "task: {type: copy, symbols: 4, min_len: 1, max_len: 3}";
    favourite_name = "b";
  }
  SUBCASE("agreement: one answer token") {
    section = "task: {type: agreement}";
    favourite_name = "is";
  }
  auto task = task_from(section);
  const std::size_t V = task->vocab_size();
  auto model = small_model(*task, 32);

  // Every token predicts `favourite`, and `favourite` predicts EOS: an answer is all right
  // when it is `favourite` alone (the agreement task's singular verb). The loss of target y
  // at input x is logsumexp(logits) - logit[y], with logit a at next[x] and 0 elsewhere.
  const qkv::tasks::Token favourite = task->encode(favourite_name).at(0);
  std::vector<qkv::tasks::Token> next(V, favourite);
  next[static_cast<std::size_t>(favourite)] = qkv::tasks::Task::eos_id;
  const double a = predict_from_current_token(*model, next);
  const double logsumexp = std::log(std::exp(a) + double(V - 1));

  const std::vector<qkv::tasks::Batch> batches =
      qkv::train::make_eval_batches(*task, task->eval_examples(300, 11), 128);
  REQUIRE(batches.size() == 3);  // 128 + 128 + 44
  std::size_t tokens = 0, right = 0, examples = 0, all_right = 0;
  double loss = 0;
  for (const qkv::tasks::Batch& batch : batches) {
    const std::size_t T = batch.seq_len();
    for (std::size_t b = 0; b < batch.batch_size(); ++b) {
      bool ok = true;
      for (std::size_t t = 0; t < T; ++t) {
        const std::size_t i = b * T + t;
        if (!batch.answer_mask[i]) continue;
        const auto target = batch.targets.values[i];
        const bool predicted = target == next[static_cast<std::size_t>(batch.inputs.values[i])];
        ++tokens;
        right += predicted;
        ok = ok && predicted;
        loss += logsumexp - (predicted ? a : 0.0);
      }
      ++examples;
      all_right += ok;
    }
  }

  const EvalResult result = qkv::train::evaluate(*model, *task, batches);
  CHECK(result.samples == 300);
  CHECK(result.token_acc == doctest::Approx(double(right) / double(tokens)));
  CHECK(result.seq_acc == doctest::Approx(double(all_right) / double(examples)));
  CHECK(result.loss == doctest::Approx(loss / double(tokens)).epsilon(1e-5));
  CHECK(result.token_acc > 0);  // the checks above are not 0 == 0
  CHECK(result.token_acc < 1);
  if (task->name() == "agreement") CHECK(result.seq_acc > 0);
  CHECK(model->is_training());  // evaluation mode was only for the evaluation
}

TEST_CASE("evaluate: per-group results add up to the totals, by attractors and by distance") {
  for (const char* format : {"simple", "hard"}) {
    CAPTURE(format);
    auto task = task_from(std::string("task: {type: agreement, format: ") + format + "}");
    auto model = small_model(*task);
    const std::vector<qkv::tasks::Example> examples = task->eval_examples(400, 2);
    const EvalResult result =
        qkv::train::evaluate(*model, *task, qkv::train::make_eval_batches(*task, examples));
    REQUIRE(!result.groups.empty());
    // Each axis partitions the examples: attractors first, then distance, labels ascending.
    std::map<std::string, std::size_t> expected_samples;
    for (const auto& e : examples) {
      ++expected_samples["attractors=" + std::to_string(e.group)];
      ++expected_samples["distance=" + std::to_string(e.distance)];
    }
    CHECK(result.groups.size() == expected_samples.size());
    for (const char* axis : {"attractors=", "distance="}) {
      CAPTURE(axis);
      std::size_t samples = 0;
      double seq_right = 0, tokens_right = 0;
      int previous = -1;
      for (const auto& group : result.groups) {
        if (group.name.rfind(axis, 0) != 0) continue;
        const int label = std::stoi(group.name.substr(group.name.find('=') + 1));
        CHECK(label > previous);
        previous = label;
        CHECK(group.samples == expected_samples.at(group.name));
        samples += group.samples;
        seq_right += group.seq_acc * double(group.samples);
        tokens_right += group.token_acc * double(group.samples);
      }
      CHECK(samples == result.samples);
      CHECK(seq_right == doctest::Approx(result.seq_acc * double(result.samples)));
      // Two answer positions per example (the verb, then EOS): the groups' token accuracies
      // add up too, and an example is right only when both positions are.
      CHECK(tokens_right == doctest::Approx(result.token_acc * double(result.samples)));
    }
    CHECK(result.groups.front().name.rfind("attractors=", 0) == 0);
    CHECK(result.groups.back().name.rfind("distance=", 0) == 0);
    CHECK(result.seq_acc <= result.token_acc + 1e-12);
    CHECK(result.token_acc <= (1 + result.seq_acc) / 2 + 1e-12);
  }
}

TEST_CASE("evaluate: a task without groups or distances reports none") {
  auto task = task_from("task: {type: copy}");
  auto model = small_model(*task);
  const EvalResult result = qkv::train::evaluate(
      *model, *task, qkv::train::make_eval_batches(*task, task->eval_examples(50, 2)));
  CHECK(result.groups.empty());
}
