// A task registered outside tasks/, in this file, is named by a config, trained by the
// Trainer to a high held-out accuracy, and written to the resolved config with its defaults.
#include <doctest/doctest.h>

#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include "tasks/generated.hpp"
#include "tasks/registry.hpp"
#include "tests/run_util.hpp"
#include "train/config.hpp"
#include "train/trainer.hpp"

using qkv::ConfigNode;
using qkv::core::Rng;
using qkv::tasks::Example;
using qkv::tasks::LossOn;
using qkv::tasks::Task;

namespace {

// The answer is the prompt with every letter moved `shift` places along the alphabet (a
// Caesar cipher): a per-position lookup that one layer learns.
class CaesarTask : public qkv::tasks::GeneratedTask {
 public:
  CaesarTask(std::size_t symbols, std::size_t length, std::size_t shift, LossOn loss_on)
      : GeneratedTask("caesar", qkv::tasks::letter_names(symbols, "s"), 2 * length, loss_on),
        symbols_(symbols),
        length_(length),
        shift_(shift) {}

 protected:
  Example draw(Rng& rng) const override {
    Example example;
    for (std::size_t i = 0; i < length_; ++i) {
      const std::size_t letter = rng.below(symbols_);
      example.prompt.push_back(qkv::tasks::own_token(letter));
      example.answer.push_back(qkv::tasks::own_token((letter + shift_) % symbols_));
    }
    return example;
  }

 private:
  std::size_t symbols_, length_, shift_;
};

std::unique_ptr<Task> make_caesar_task(const ConfigNode& options, LossOn loss_on,
                                       const std::string&) {
  const auto symbols = options.get<std::size_t>("symbols", 8);
  options.require(symbols >= 2, "symbols", "at least 2 letters");
  const auto length = options.get<std::size_t>("length", 4);
  options.require(length >= 1, "length", "at least one letter");
  return std::make_unique<CaesarTask>(symbols, length, options.get<std::size_t>("shift", 3),
                                      loss_on);
}

const qkv::tasks::RegisterTask registration("caesar", make_caesar_task);

constexpr const char* kConfig = R"(name: caesar
seed: 2
task: {type: caesar, symbols: 6}
model: {d_model: 32, heads: 2, layers: 1, d_ff: 64}
optim: {type: adam, lr: 0.01}
train: {steps: 300, batch_size: 32, eval_every: 100, eval_samples: 128, log_every: 50}
)";

}  // namespace

TEST_CASE("custom task: registered in a test file, named by a config, trained by the Trainer") {
  const std::string dir = qkv::test::fresh_dir("custom_task");
  qkv::train::TrainerOptions options;
  options.out_dir = dir;
  options.out = nullptr;
  qkv::train::Trainer trainer(qkv::train::parse_config(kConfig, "caesar.yaml"), options);
  CHECK(trainer.task().name() == "caesar");
  CHECK(trainer.task().vocab_size() == 9);  // PAD, SEP, EOS, six letters
  const qkv::train::TrainSummary summary = trainer.run();
  CHECK(summary.steps == 300);
  CHECK(summary.last_eval.seq_acc > 0.9);

  // The resolved config holds the task's defaults, and reads back to the same task.
  std::ifstream in(dir + "/config.yaml");
  std::stringstream text;
  text << in.rdbuf();
  CHECK(text.str().find("task:\n  type: caesar\n  symbols: 6\n  length: 4\n  shift: 3\n") !=
        std::string::npos);
  const auto again = qkv::train::parse_config(text.str(), "config.yaml").make_task();
  CHECK(again->eval_examples(8, 5)[3].answer == trainer.task().eval_examples(8, 5)[3].answer);
}
