// evaluate: accuracy and loss on answer positions, checked against a model whose
// prediction is known (a constant output), and per-group results that add up.
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

std::shared_ptr<qkv::layers::Transformer> small_model(const qkv::tasks::Task& task) {
  Rng rng(4);
  const qkv::ConfigNode root =
      qkv::ConfigNode::parse("model: {d_model: 8, heads: 2, layers: 1, d_ff: 16}", "test");
  return qkv::layers::build_model(qkv::layers::read_transformer_options(root.child("model")),
                                  task.vocab_size(), task.max_seq_len(), rng);
}

// The task a `task:` section in YAML describes.
std::unique_ptr<qkv::tasks::Task> task_from(const std::string& yaml) {
  return qkv::tasks::make_task(qkv::ConfigNode::parse(yaml, "test").section("task", "copy"),
                               LossOn::answer);
}

}  // namespace

TEST_CASE("evaluate: a model that always predicts one token scores what the targets say") {
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
  auto model = small_model(*task);
  const std::size_t V = task->vocab_size();

  // A zero head with a bias peaked on token `favourite`: every position's logits are the
  // bias, so the argmax is `favourite` and the loss of target y is logsumexp(bias) - bias[y].
  const qkv::tasks::Token favourite = task->encode(favourite_name).at(0);
  std::vector<float> bias(V, 0.0f);
  bias[favourite] = 2.0f;
  for (auto& param : model->named_parameters()) {
    if (param.name == "head.weight") param.tensor.fill_(0.0);
    if (param.name == "head.bias")
      param.tensor.copy_(qkv::core::Tensor::from_vector(bias, {V}));
  }
  double logsumexp = 0;
  for (float b : bias) logsumexp += std::exp(double(b));
  logsumexp = std::log(logsumexp);

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
        ++tokens;
        right += target == favourite;
        ok = ok && target == favourite;
        loss += logsumexp - bias[static_cast<std::size_t>(target)];
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
  if (task->name() == "agreement") CHECK(result.seq_acc > 0);
  CHECK(model->is_training());  // evaluation mode was only for the evaluation
}

TEST_CASE("evaluate: per-group results add up to the totals") {
  auto task = task_from("task: {type: agreement}");
  auto model = small_model(*task);
  const EvalResult result =
      qkv::train::evaluate(*model, *task, qkv::train::make_eval_batches(*task, task->eval_examples(400, 2)));
  REQUIRE(!result.groups.empty());
  std::size_t samples = 0;
  double seq_right = 0;
  for (const auto& group : result.groups) {
    CHECK(group.name.rfind("attractors=", 0) == 0);
    samples += group.samples;
    seq_right += group.seq_acc * double(group.samples);
  }
  CHECK(samples == result.samples);
  CHECK(seq_right == doctest::Approx(result.seq_acc * double(result.samples)));
  // One answer token per example: token and sequence accuracy coincide.
  CHECK(result.token_acc == doctest::Approx(result.seq_acc));
}
