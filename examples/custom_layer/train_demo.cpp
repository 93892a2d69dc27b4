// train_demo: config -> model (with the registered gated_ffn) -> Adam on the copy task.
#include "examples/custom_layer/train_demo.hpp"

#include <yaml-cpp/yaml.h>

#include "core/ops.hpp"
#include "core/random.hpp"
#include "layers/build_model.hpp"
#include "optim/adam.hpp"

namespace example {

using qkv::ConfigNode;
using qkv::core::Ids;

namespace {

struct CopyBatch {
  Ids input, target;
  std::vector<std::uint8_t> mask;  // 1 on the copied half
};

// [x1..xn, SEP, x1..xn] without its last token as input, shifted by one as target.
CopyBatch copy_batch(std::size_t batch, std::size_t n, std::size_t vocab, qkv::core::Rng& rng) {
  const std::size_t T = 2 * n;
  const auto separator = static_cast<std::int32_t>(vocab - 1);
  CopyBatch out{{{batch, T}, {}}, {{batch, T}, {}}, {}};
  for (std::size_t b = 0; b < batch; ++b) {
    std::vector<std::int32_t> full;
    for (std::size_t i = 0; i < n; ++i) full.push_back(static_cast<std::int32_t>(rng.below(vocab - 1)));
    full.push_back(separator);
    for (std::size_t i = 0; i < n; ++i) full.push_back(full[i]);
    out.input.values.insert(out.input.values.end(), full.begin(), full.end() - 1);
    out.target.values.insert(out.target.values.end(), full.begin() + 1, full.end());
    for (std::size_t t = 0; t < T; ++t) out.mask.push_back(t >= n ? 1 : 0);
  }
  return out;
}

}  // namespace

std::vector<double> train_demo(const std::string& config_path, std::FILE* out) {
  const ConfigNode root(YAML::LoadFile(config_path), "", config_path);
  const ConfigNode demo = root.child("demo");
  const auto steps = demo.get<std::size_t>("steps");
  const auto batch = demo.get<std::size_t>("batch");
  const auto length = demo.get<std::size_t>("length");
  const auto vocab = demo.get<std::size_t>("vocab");
  demo.require(vocab >= 3, "vocab", "at least 3 (two tokens and the separator)");
  const auto lr = demo.get<double>("lr");
  qkv::core::Rng rng(demo.get<std::size_t>("seed", 1));

  // `model.ffn.type: gated_ffn` resolves through the process-wide registry, where the one
  // line at the end of gated_ffn.cpp put it.
  auto model = qkv::layers::build_model(root.child("model"), vocab, 2 * length, rng);
  root.finish();
  if (out) {
    std::fprintf(out, "model: %zu parameters; block 0 ffn: %s\n", model->parameter_count(),
                 model->state().count("blocks.0.ffn.gate.weight") ? "gated_ffn" : "other");
  }

  qkv::optim::AdamOptions adam;
  adam.lr = lr;
  qkv::optim::Adam optimizer(model->named_parameters(), adam);
  std::vector<double> losses;
  for (std::size_t step = 1; step <= steps; ++step) {
    const CopyBatch data = copy_batch(batch, length, vocab, rng);
    optimizer.zero_grad();
    qkv::core::Tensor loss =
        qkv::core::cross_entropy(model->forward(data.input), data.target, data.mask);
    loss.backward();
    optimizer.step();
    losses.push_back(loss.item());
    if (out) std::fprintf(out, "step %3zu  loss %.4f\n", step, losses.back());
  }
  return losses;
}

}  // namespace example
