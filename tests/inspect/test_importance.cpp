// inspect/importance: zero ablation at hook_z is the model with that head's Wo columns
// zeroed, mean ablation is those columns folded into wo's bias at the head's mean output,
// a trained copy model needs its heads, and the hooks are gone afterwards.
#include <doctest/doctest.h>

#include <map>
#include <string>
#include <vector>

#include "inspect/importance.hpp"
#include "inspect_test_util.hpp"
#include "train/evaluate.hpp"

using namespace qkv;
using namespace qkv::inspect;

namespace {

struct WoRestore {
  core::Tensor weight, bias, saved_weight, saved_bias;
  ~WoRestore() {
    weight.copy_(saved_weight);
    bias.copy_(saved_bias);
  }
};

core::Tensor parameter(const layers::Transformer& model, const std::string& name) {
  for (const core::NamedParameter& p : model.named_parameters())
    if (p.name == name) return p.tensor;
  FAIL("no parameter " << name);
  return {};
}

}  // namespace

TEST_CASE("head_importance: ablations equal editing wo, and a copy model needs its heads") {
  const test::TrainedRun& run = test::trained_copy_run();
  layers::Transformer& model = *run.model;
  const std::vector<tasks::Batch> batches =
      train::make_eval_batches(*run.task, run.task->eval_examples(64, 9));
  const ImportanceReport report = head_importance(model, *run.task, batches);
  REQUIRE(report.layers.size() == 2);
  REQUIRE(report.layers[1].size() == 2);
  CHECK_FALSE(report.heads_are_one);
  CHECK(report.intact.seq_acc == train::evaluate(model, *run.task, batches).seq_acc);
  for (const std::string& name : model.hook_names()) CHECK_FALSE(model.hook_point(name).active());

  const std::size_t layer = 1, head = 1;
  const std::size_t C = model.d_model(), Dv = C / 2;
  const std::string wo = "blocks." + std::to_string(layer) + ".attn.wo.";
  WoRestore restore{parameter(model, wo + "weight"), parameter(model, wo + "bias"), {}, {}};
  restore.saved_weight = restore.weight.clone();
  restore.saved_bias = restore.bias.clone();
  float* w = restore.weight.data<float>();  // (C, H·Dv)

  SUBCASE("zero ablation: the head's columns of wo are zero") {
    for (std::size_t r = 0; r < C; ++r)
      for (std::size_t k = 0; k < Dv; ++k) w[r * 2 * Dv + head * Dv + k] = 0;
    const train::EvalResult edited = train::evaluate(model, *run.task, batches);
    CHECK(report.layers[layer][head].zero.loss == doctest::Approx(edited.loss).epsilon(1e-5));
    CHECK(report.layers[layer][head].zero.seq_acc == edited.seq_acc);
  }
  SUBCASE("mean ablation: wo's bias takes the head's mean output through its columns") {
    // The head's mean output over real positions, read at hook_z of the intact model.
    std::vector<double> mean(Dv, 0.0);
    std::size_t count = 0;
    const tasks::Batch* current = nullptr;
    const layers::HookHandle h = model.add_hook(layers::read_hook(
        "blocks." + std::to_string(layer) + ".attn.hook_z", [&](const core::Tensor& z) {
          const float* v = z.data<float>();  // (B, T, H, Dv)
          for (std::size_t i = 0; i < current->inputs.values.size(); ++i) {
            if (current->inputs.values[i] == tasks::Task::pad_id) continue;
            for (std::size_t k = 0; k < Dv; ++k) mean[k] += v[(i * 2 + head) * Dv + k];
            ++count;
          }
        }));
    model.eval();
    {
      core::NoGrad no_grad;
      for (const tasks::Batch& batch : batches) {
        current = &batch;
        model.forward(batch.inputs);
      }
    }
    model.remove_hook(h);
    float* b = restore.bias.data<float>();
    for (std::size_t r = 0; r < C; ++r)
      for (std::size_t k = 0; k < Dv; ++k) {
        float& column = w[r * 2 * Dv + head * Dv + k];
        b[r] += static_cast<float>(column * mean[k] / static_cast<double>(count));
        column = 0;
      }
    const train::EvalResult edited = train::evaluate(model, *run.task, batches);
    CHECK(report.layers[layer][head].mean.loss == doctest::Approx(edited.loss).epsilon(1e-4));
    CHECK(report.layers[layer][head].mean.seq_acc == doctest::Approx(edited.seq_acc));
  }

  double biggest_drop = 0;
  for (const auto& heads : report.layers)
    for (const HeadImportance& h : heads) {
      biggest_drop = std::max(biggest_drop, h.zero.seq_acc_drop);
      CHECK(h.zero.seq_acc_drop == doctest::Approx(report.intact.seq_acc - h.zero.seq_acc));
      CHECK(h.mean.loss_rise == doctest::Approx(h.mean.loss - report.intact.loss));
    }
  CHECK(biggest_drop > 0.5);
}

TEST_CASE("head_importance: with projections none every head is the one head") {
  const auto task = test::make_task("{type: copy, symbols: 6, min_len: 3, max_len: 5}");
  const auto model = test::make_model("d_model: 16\nheads: 4\nlayers: 1\nattention: {projections: none}\n", *task);
  const ImportanceReport report =
      head_importance(*model, *task, train::make_eval_batches(*task, task->eval_examples(16, 1)));
  CHECK(report.heads_are_one);
  REQUIRE(report.layers[0].size() == 4);
  for (const HeadImportance& h : report.layers[0]) {
    CHECK(h.zero.loss == report.layers[0][0].zero.loss);
    CHECK(h.zero.loss != report.intact.loss);
  }
  CHECK_THROWS_WITH_AS(head_importance(*model, *task, {}), doctest::Contains("no examples"),
                       std::invalid_argument);
}
