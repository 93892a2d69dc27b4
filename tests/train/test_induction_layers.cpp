// configs/induction.yaml's claim, on a budget: two layers learn the induction task, one
// layer does not (a key knows its own token, not the one before it).
#include <doctest/doctest.h>

#include <string>

#include "tests/run_util.hpp"
#include "train/config.hpp"
#include "train/trainer.hpp"

using qkv::train::load_config;
using qkv::train::Trainer;
using qkv::train::TrainerOptions;

namespace {

qkv::train::TrainSummary train_induction(const std::string& dir, int layers) {
  TrainerOptions options;
  options.out_dir = dir;
  options.out = nullptr;
  const std::string config = std::string(QKV_SOURCE_DIR) + "/configs/induction.yaml";
  Trainer trainer(load_config(config, {"model.layers=" + std::to_string(layers), "train.steps=400",
                                       "train.eval_samples=256", "train.stop_at_seq_acc=0.9"}),
                  options);
  return trainer.run();
}

}  // namespace

TEST_CASE("induction: two layers pass 0.9 within 400 steps; one layer stays near chance") {
  const auto two = train_induction(qkv::test::fresh_dir("induction_two_layers"), 2);
  CHECK(two.stopped_early);
  CHECK(two.last_eval.seq_acc >= 0.9);
  const auto one = train_induction(qkv::test::fresh_dir("induction_one_layer"), 1);
  CHECK_FALSE(one.stopped_early);
  REQUIRE(one.best_seq_acc.has_value());
  CHECK(*one.best_seq_acc < 0.3);
}
