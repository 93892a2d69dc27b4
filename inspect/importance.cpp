// Head importance by zero and mean ablation at hook_z (see importance.hpp), with the
// ablation hooks of interventions.hpp.
#include "inspect/importance.hpp"

#include <algorithm>
#include <stdexcept>

#include "inspect/interventions.hpp"
#include "layers/hooks.hpp"

namespace qkv::inspect {

namespace {

using core::Tensor;

std::string z_point(std::size_t layer) { return "blocks." + std::to_string(layer) + ".attn.hook_z"; }

// A hook that is removed when this goes out of scope, however the forward ends.
class ScopedHook {
 public:
  ScopedHook(layers::Transformer& model, const layers::Hook& hook)
      : model_(model), handle_(model.add_hook(hook)) {}
  ~ScopedHook() { model_.remove_hook(handle_); }
  ScopedHook(const ScopedHook&) = delete;
  ScopedHook& operator=(const ScopedHook&) = delete;

 private:
  layers::Transformer& model_;
  layers::HookHandle handle_;
};

// Each computed head's mean output at `layer` over the batches' real (non-PAD) positions.
struct MeanOutputs {
  std::size_t heads = 0;  // h of hook_z: H, or 1 when one head stands for all
  std::vector<std::vector<double>> values;  // per head, Dv
};

MeanOutputs mean_outputs(layers::Transformer& model, std::size_t layer,
                         const std::vector<tasks::Batch>& batches) {
  MeanOutputs means;
  std::size_t count = 0;
  const tasks::Batch* current = nullptr;
  // A batch's head means, weighted by its real positions, summed over batches.
  ScopedHook hook(model, layers::read_hook(z_point(layer), [&](const Tensor& z) {
    std::vector<std::uint8_t> real(current->inputs.values.size());
    std::size_t n = 0;
    for (std::size_t i = 0; i < real.size(); ++i)
      n += real[i] = current->inputs.values[i] != tasks::Task::pad_id;
    if (n == 0) return;
    if (means.values.empty()) {
      means.heads = z.size(2);
      means.values.assign(means.heads, std::vector<double>(z.size(3), 0.0));
    }
    for (std::size_t h = 0; h < means.heads; ++h) {
      const std::vector<double> mean = head_mean(z, h, real).to_vector();
      for (std::size_t k = 0; k < mean.size(); ++k) means.values[h][k] += mean[k] * static_cast<double>(n);
    }
    count += n;
  }));
  const bool was_training = model.is_training();
  model.eval();
  {
    core::NoGrad no_grad;
    for (const tasks::Batch& batch : batches) {
      current = &batch;
      model.forward(batch.inputs);
    }
  }
  model.train(was_training);
  for (std::vector<double>& head : means.values)
    for (double& v : head) v /= static_cast<double>(std::max<std::size_t>(count, 1));
  return means;
}

AblationEffect ablated(layers::Transformer& model, const tasks::Task& task,
                       const std::vector<tasks::Batch>& batches, const layers::Hook& ablation,
                       const train::EvalResult& intact) {
  ScopedHook hook(model, ablation);
  const train::EvalResult result = train::evaluate(model, task, batches);
  return {result.seq_acc, result.loss, intact.seq_acc - result.seq_acc, result.loss - intact.loss};
}

bool has_point(const layers::Transformer& model, const std::string& name) {
  const std::vector<std::string>& names = model.hook_names();
  return std::find(names.begin(), names.end(), name) != names.end();
}

}  // namespace

ImportanceReport head_importance(layers::Transformer& model, const tasks::Task& task,
                                 const std::vector<tasks::Batch>& batches) {
  if (batches.empty()) throw std::invalid_argument("head_importance: no examples to evaluate on");
  ImportanceReport report;
  report.intact = train::evaluate(model, task, batches);
  for (std::size_t l = 0; l < model.layers(); ++l) {
    std::vector<HeadImportance>& heads = report.layers.emplace_back();
    if (!has_point(model, z_point(l))) {
      report.note = "layer " + std::to_string(l) + "'s attention (" +
                    model.options().attention.type + ") has no hook_z: no head importance";
      continue;
    }
    const MeanOutputs means = mean_outputs(model, l, batches);
    for (std::size_t h = 0; h < means.heads; ++h) {
      HeadImportance importance;
      importance.zero = ablated(model, task, batches, zero_ablate_head(l, h), report.intact);
      const Tensor mean = core::Tensor::from_vector(means.values[h], {means.values[h].size()});
      importance.mean = ablated(model, task, batches, mean_ablate_head(l, h, mean), report.intact);
      heads.push_back(importance);
    }
    const std::size_t H = model.options().heads;
    if (means.heads == 1 && H > 1) {
      report.heads_are_one = true;
      heads.assign(H, heads.front());  // every head is that one head
    }
  }
  return report;
}

}  // namespace qkv::inspect
