// The attention variants in a training run: frozen matrices keep their initial values
// through optimizer steps (no optimizer state), are saved in the checkpoint and come back
// on resume; merged and tied train; and the model line counts learned attention parameters
// apart from frozen ones.
#include <doctest/doctest.h>

#include <cstdio>
#include <map>
#include <string>

#include "io/checkpoint.hpp"
#include "tests/run_util.hpp"
#include "train/config.hpp"
#include "train/trainer.hpp"

using qkv::core::Tensor;
using qkv::io::load_checkpoint;
using qkv::test::fresh_dir;
using qkv::test::write_text;
using qkv::train::load_config;
using qkv::train::Trainer;
using qkv::train::TrainerOptions;

namespace {

constexpr const char* kConfig = R"(name: variants
seed: 2
task: {type: copy, symbols: 6, min_len: 3, max_len: 5}
model: {d_model: 16, heads: 2, layers: 1, d_ff: 32}
optim: {type: adamw, lr: 0.01, weight_decay: 0.1}
train: {steps: 6, batch_size: 8, eval_every: 3, eval_samples: 16, log_every: 3,
        checkpoint_every: 3}
)";

TrainerOptions quiet(const std::string& dir, bool resume = false) {
  TrainerOptions options;
  options.out_dir = dir;
  options.resume = resume;
  options.out = nullptr;
  return options;
}

std::map<std::string, Tensor> attention_state(Trainer& trainer) {
  std::map<std::string, Tensor> out;
  for (const auto& [name, t] : trainer.model().state())
    if (name.find(".attn.") != std::string::npos) out.emplace(name, t);
  return out;
}

}  // namespace

TEST_CASE("attention variants: frozen weights survive optimizer steps and round-trip a checkpoint") {
  const std::string dir = fresh_dir("variants_frozen");
  const std::string path = write_text(dir + "/variants.yaml", kConfig);
  const std::vector<std::string> frozen = {"model.attention.wq=frozen", "model.attention.wk=frozen"};
  Trainer trainer(load_config(path, frozen), quiet(dir + "/run"));
  const auto before = attention_state(trainer);
  trainer.run();
  const auto after = attention_state(trainer);
  const auto optimizer_state = trainer.optimizer().export_state();
  for (const auto& [name, t] : before) {
    CAPTURE(name);
    const bool is_frozen = name.find(".wq.") != std::string::npos || name.find(".wk.") != std::string::npos;
    if (is_frozen) {
      CHECK(after.at(name).to_vector() == t.to_vector());  // weight decay did not touch it
      CHECK(optimizer_state.tensors.count(name + ".exp_avg") == 0);
    } else {
      CHECK(after.at(name).to_vector() != t.to_vector());
      CHECK(optimizer_state.tensors.count(name + ".exp_avg") == 1);
    }
  }
  // The checkpoint holds the frozen tensors, and a resumed run reads them back.
  const auto checkpoint = load_checkpoint(dir + "/run/last.safetensors");
  CHECK(checkpoint.weights.at("blocks.0.attn.wq.weight").to_vector() ==
        before.at("blocks.0.attn.wq.weight").to_vector());
  Trainer resumed(load_config(path, {frozen[0], frozen[1], "train.steps=9"}),
                  quiet(dir + "/run", /*resume=*/true));
  CHECK(resumed.step() == 6);
  CHECK(attention_state(resumed).at("blocks.0.attn.wk.bias").to_vector() ==
        before.at("blocks.0.attn.wk.bias").to_vector());
  resumed.run();
  CHECK(attention_state(resumed).at("blocks.0.attn.wk.weight").to_vector() ==
        before.at("blocks.0.attn.wk.weight").to_vector());
}

TEST_CASE("attention variants: merged and tied train, and the model line counts attention") {
  for (const char* form : {"merged", "tied"}) {
    CAPTURE(form);
    const std::string dir = fresh_dir(std::string("variants_") + form);
    const std::string path = write_text(dir + "/variants.yaml", kConfig);
    std::FILE* out = std::tmpfile();
    REQUIRE(out != nullptr);
    TrainerOptions options = quiet(dir + "/run");
    options.out = out;
    options.terminal = false;
    Trainer trainer(load_config(path, {std::string("model.attention.qk=") + form}), options);
    const auto before = attention_state(trainer);
    trainer.run();
    const auto after = attention_state(trainer);
    for (const auto& [name, t] : before) CHECK(after.at(name).to_vector() != t.to_vector());
    CHECK(before.count(std::string("blocks.0.attn.") + (form == std::string("merged") ? "wqk" : "wq.weight")) == 1);
    CHECK(before.count("blocks.0.attn.wk.weight") == 0);

    std::rewind(out);
    std::string printed;
    for (int c; (c = std::fgetc(out)) != EOF;) printed += static_cast<char>(c);
    std::fclose(out);
    const std::size_t C = 16, H = 2, lin = C * C + C;
    const std::size_t attention = form == std::string("merged") ? H * C * C + 2 * lin : 3 * lin;
    CHECK(trainer.model().attention_parameter_count() == attention);
    const std::string line = "# model: " + std::to_string(trainer.model().parameter_count()) +
                             " parameters (" + std::to_string(attention) + " in attention)\n";
    CHECK_MESSAGE(printed.find(line) != std::string::npos, printed);
  }
}

TEST_CASE("attention variants: the model line names frozen scalars apart") {
  const std::string dir = fresh_dir("variants_line");
  const std::string path = write_text(dir + "/variants.yaml", kConfig);
  std::FILE* out = std::tmpfile();
  REQUIRE(out != nullptr);
  TrainerOptions options = quiet(dir + "/run");
  options.out = out;
  options.terminal = false;
  Trainer trainer(load_config(path, {"model.attention.wv=frozen", "train.steps=1"}), options);
  trainer.run();
  std::rewind(out);
  std::string printed;
  for (int c; (c = std::fgetc(out)) != EOF;) printed += static_cast<char>(c);
  std::fclose(out);
  const std::size_t lin = 16 * 16 + 16;
  CHECK_MESSAGE(printed.find(" parameters (" + std::to_string(3 * lin) + " in attention), " +
                             std::to_string(lin) + " frozen\n") != std::string::npos,
                printed);
}
