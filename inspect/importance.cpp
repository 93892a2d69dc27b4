// Head importance by zero and mean ablation at hook_z (see importance.hpp).
#include "inspect/importance.hpp"

#include <algorithm>
#include <stdexcept>

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

// z (B, T, h, Dv) summed into sum (h·Dv) over the positions whose input is not PAD.
template <class T>
std::size_t add_real_positions(const Tensor& z, const std::vector<tasks::Token>& inputs,
                               std::vector<double>& sum) {
  const std::size_t width = z.size(2) * z.size(3);
  const T* values = z.data<T>();
  std::size_t count = 0;
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    if (inputs[i] == tasks::Task::pad_id) continue;
    for (std::size_t k = 0; k < width; ++k) sum[k] += values[i * width + k];
    ++count;
  }
  return count;
}

// Each computed head's mean output at `layer` over the batches' real positions.
struct MeanOutputs {
  std::size_t heads = 0;      // h of hook_z: H, or 1 when one head stands for all
  std::size_t width = 0;      // Dv
  std::vector<double> values;  // heads × width
};

MeanOutputs mean_outputs(layers::Transformer& model, std::size_t layer,
                         const std::vector<tasks::Batch>& batches) {
  MeanOutputs means;
  std::size_t count = 0;
  const tasks::Batch* current = nullptr;
  ScopedHook hook(model, layers::read_hook(z_point(layer), [&](const Tensor& z) {
    if (means.values.empty()) {
      means.heads = z.size(2);
      means.width = z.size(3);
      means.values.assign(means.heads * means.width, 0.0);
    }
    count += z.dtype() == core::DType::f32
                 ? add_real_positions<float>(z, current->inputs.values, means.values)
                 : add_real_positions<double>(z, current->inputs.values, means.values);
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
  for (double& v : means.values) v /= static_cast<double>(std::max<std::size_t>(count, 1));
  return means;
}

// z with head `head`'s Dv values at every position replaced by `fill` (Dv values).
template <class T>
Tensor with_head_filled(const Tensor& z, std::size_t head, const std::vector<double>& fill) {
  Tensor out = z.clone();
  const std::size_t h = z.size(2), Dv = z.size(3);
  const std::size_t positions = z.size(0) * z.size(1);
  T* values = out.data<T>();
  for (std::size_t p = 0; p < positions; ++p)
    for (std::size_t k = 0; k < Dv; ++k) values[(p * h + head) * Dv + k] = static_cast<T>(fill[k]);
  return out;
}

AblationEffect ablated(layers::Transformer& model, const tasks::Task& task,
                       const std::vector<tasks::Batch>& batches, std::size_t layer,
                       std::size_t head, const std::vector<double>& fill,
                       const train::EvalResult& intact) {
  ScopedHook hook(model, layers::replace_hook(z_point(layer), [head, &fill](const Tensor& z) {
    return z.dtype() == core::DType::f32 ? with_head_filled<float>(z, head, fill)
                                         : with_head_filled<double>(z, head, fill);
  }));
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
      const auto first = means.values.begin() + static_cast<std::ptrdiff_t>(h * means.width);
      const std::vector<double> mean(first, first + static_cast<std::ptrdiff_t>(means.width));
      HeadImportance importance;
      importance.zero = ablated(model, task, batches, l, h, std::vector<double>(means.width, 0.0),
                                report.intact);
      importance.mean = ablated(model, task, batches, l, h, mean, report.intact);
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
