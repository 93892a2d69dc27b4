// Checkpoints: what goes in comes back out, bit for bit, and bad files are named.
#include <doctest/doctest.h>

#include <cstdio>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/ops.hpp"
#include "core/parameter.hpp"
#include "core/random.hpp"
#include "optim/factory.hpp"
#include "io/atomic_file.hpp"
#include "io/checkpoint.hpp"
#include "io/safetensors.hpp"

using qkv::core::Rng;
using qkv::core::Tensor;
using qkv::io::Checkpoint;
using qkv::io::load_checkpoint;
using qkv::io::save_checkpoint;

namespace {

// A two-parameter model: enough for names, shapes and optimizer state. Its parameters are
// plain core tensors (io sits below layers' Module; Module's own load_state checks are
// tested in tests/layers).
class Tiny {
 public:
  Tiny(std::size_t rows, Rng& rng)
      : weight_(Tensor::randn({rows, 3}, rng).requires_grad_()),
        bias_(Tensor::zeros({rows}).requires_grad_()) {}
  std::vector<qkv::core::NamedParameter> named_parameters() const {
    return {{"weight", weight_, qkv::core::ParamKind::weight},
            {"bias", bias_, qkv::core::ParamKind::bias}};
  }
  std::map<std::string, Tensor> state() const {
    return {{"weight", weight_.clone()}, {"bias", bias_.clone()}};
  }
  void load_state(const std::map<std::string, Tensor>& state) {
    weight_.copy_(state.at("weight"));
    bias_.copy_(state.at("bias"));
  }
  Tensor loss() const {
    Tensor y = qkv::core::add(weight_, qkv::core::reshape(bias_, {bias_.numel(), 1}));
    return qkv::core::sum(qkv::core::mul(y, y));
  }

 private:
  Tensor weight_, bias_;
};

void train_steps(Tiny& model, qkv::optim::Optimizer& optimizer, int steps) {
  for (int i = 0; i < steps; ++i) {
    optimizer.zero_grad();
    model.loss().backward();
    optimizer.step();
  }
}

// The model and optimizer after `steps` steps, as a Trainer's checkpoint holds them.
Checkpoint checkpoint_after(Tiny& model, qkv::optim::Optimizer& optimizer, int steps) {
  train_steps(model, optimizer, steps);
  Checkpoint checkpoint;
  checkpoint.weights = model.state();
  checkpoint.optimizer_name = optimizer.name();
  checkpoint.optimizer = optimizer.export_state();
  checkpoint.step = static_cast<std::size_t>(steps);
  return checkpoint;
}

std::string temp_path(const std::string& name) {
  return std::string(QKV_BINARY_DIR) + "/" + name;
}

void check_same_tensors(const std::map<std::string, Tensor>& a,
                        const std::map<std::string, Tensor>& b) {
  REQUIRE(a.size() == b.size());
  for (const auto& [name, tensor] : a) {
    CAPTURE(name);
    REQUIRE(b.count(name) == 1);
    CHECK(b.at(name).shape() == tensor.shape());
    CHECK(b.at(name).to_vector() == tensor.to_vector());
  }
}

}  // namespace

TEST_CASE("checkpoint: round trip keeps weights, optimizer, RNG, config and run state") {
  Rng rng(7);
  Tiny model(4, rng);
  qkv::optim::OptimizerOptions options;
  options.type = "adam";
  options.lr = 0.01;
  auto optimizer = qkv::optim::make_optimizer(options, model.named_parameters());
  Checkpoint saved = checkpoint_after(model, *optimizer, 3);
  Rng data_rng(99);
  data_rng.normal();  // leaves a cached normal in the state
  saved.rng_states["data"] = data_rng.state();
  saved.config_yaml = "name: tiny\nseed: 7\n# a comment: with \"quotes\"\n";
  saved.task_state = "{\"vocabulary\": [\"a\", \"é\"]}\n";
  saved.best_seq_acc = 0.1 + 0.2;  // not representable in short decimal
  saved.elapsed_s = 12.345678901234567;
  const std::string path = temp_path("test_checkpoint_roundtrip.safetensors");
  save_checkpoint(path, saved);

  Checkpoint loaded = load_checkpoint(path);
  check_same_tensors(saved.weights, loaded.weights);
  check_same_tensors(saved.optimizer.tensors, loaded.optimizer.tensors);
  CHECK(loaded.optimizer.scalars == saved.optimizer.scalars);
  CHECK(loaded.optimizer_name == "adam");
  CHECK(loaded.step == 3);
  CHECK(loaded.config_yaml == saved.config_yaml);
  CHECK(loaded.task_state == saved.task_state);
  REQUIRE(loaded.best_seq_acc.has_value());
  CHECK(*loaded.best_seq_acc == *saved.best_seq_acc);
  CHECK(loaded.elapsed_s == saved.elapsed_s);

  SUBCASE("the restored RNG continues the same stream") {
    Rng restored(0);
    restored.set_state(loaded.rng_states.at("data"));
    for (int i = 0; i < 5; ++i) CHECK(restored.normal() == data_rng.normal());
  }
  SUBCASE("a restored model and optimizer take the same next step") {
    Rng other(123);
    Tiny resumed(4, other);
    resumed.load_state(loaded.weights);
    auto resumed_optimizer =
        qkv::optim::make_optimizer(options, resumed.named_parameters());
    resumed_optimizer->import_state(loaded.optimizer);
    train_steps(model, *optimizer, 2);
    train_steps(resumed, *resumed_optimizer, 2);
    check_same_tensors(model.state(), resumed.state());
  }
  std::remove(path.c_str());
}

TEST_CASE("checkpoint: the streamed file is byte for byte encode_checkpoint's") {
  // save_checkpoint streams the tensors to the file instead of building it as one string;
  // the bytes must stay those of the in-memory encoding, which the format tests pin.
  Rng rng(3);
  Tiny model(70, rng);  // weight 70 x 3, bias 70, and Adam's two moments of each
  qkv::optim::OptimizerOptions options;
  options.type = "adam";
  auto optimizer = qkv::optim::make_optimizer(options, model.named_parameters());
  Checkpoint saved = checkpoint_after(model, *optimizer, 2);
  saved.rng_states["data"] = rng.state();
  saved.config_yaml = "name: streamed\n";
  saved.vocabulary = {"<pad>", "<sep>", "<eos>", "a"};
  saved.best_seq_acc = 0.25;
  saved.elapsed_s = 1.5;
  const std::string path = temp_path("test_checkpoint_streamed.safetensors");
  save_checkpoint(path, saved);
  CHECK(qkv::io::read_file(path) == qkv::io::encode_checkpoint(saved));
  std::remove(path.c_str());
}

TEST_CASE("checkpoint: files that are not qkv checkpoints are named") {
  const std::string path = temp_path("test_checkpoint_bad.safetensors");
  qkv::io::Safetensors file;
  file.tensors["w"] = Tensor::zeros({2});
  SUBCASE("plain safetensors without qkv metadata") {
    qkv::io::write_safetensors(path, file);
    CHECK_THROWS_WITH_AS(load_checkpoint(path),
                         doctest::Contains("test_checkpoint_bad.safetensors': metadata has no 'format'"),
                         std::runtime_error);
  }
  SUBCASE("a newer format version") {
    Checkpoint checkpoint;
    save_checkpoint(path, checkpoint);
    file = qkv::io::read_safetensors(path);
    file.metadata["format_version"] = "99";
    qkv::io::write_safetensors(path, file);
    CHECK_THROWS_WITH_AS(load_checkpoint(path), doctest::Contains("format version 99"),
                         std::runtime_error);
  }
  SUBCASE("a damaged metadata value") {
    Checkpoint checkpoint;
    save_checkpoint(path, checkpoint);
    file = qkv::io::read_safetensors(path);
    file.metadata["step"] = "-4";
    qkv::io::write_safetensors(path, file);
    CHECK_THROWS_WITH_AS(load_checkpoint(path),
                         doctest::Contains("metadata 'step' must be a non-negative integer"),
                         std::runtime_error);
  }
  std::remove(path.c_str());
}
