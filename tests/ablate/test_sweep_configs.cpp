// The shipped sweep configs (configs/ablations/): one per task, each planning every
// default variant × 3 seeds whose configs all build; a run's config is its base config
// with only the variant's attention keys, the seed and the sweep's budget changed; and a
// sweep config is not a config `qkv train` takes.
#include <doctest/doctest.h>

#include <filesystem>
#include <set>
#include <string>

#include "ablate/plan.hpp"
#include "core/random.hpp"
#include "layers/build_model.hpp"
#include "tests/run_util.hpp"
#include "train/config.hpp"

namespace {

namespace fs = std::filesystem;

const fs::path kSweeps = fs::path(QKV_SOURCE_DIR) / "configs" / "ablations";

qkv::ablate::SweepPlan plan_shipped(const std::string& task, const std::string& out) {
  qkv::ablate::SweepRequest request;
  request.config_path = (kSweeps / (task + ".yaml")).string();
  request.out_dir = out;
  return qkv::ablate::plan_sweep(request);
}

}  // namespace

TEST_CASE("sweep configs: one per task, every default variant x 3 seeds, every run builds") {
  std::set<std::string> found;
  for (const auto& entry : fs::directory_iterator(kSweeps)) found.insert(entry.path().stem().string());
  CHECK(found == std::set<std::string>{"agreement", "copy", "induction", "recall", "reverse", "sort"});
  const std::string dir = qkv::test::fresh_dir("sweep_configs");
  for (const std::string& task : found) {
    CAPTURE(task);
    const qkv::ablate::SweepPlan plan = plan_shipped(task, dir + "/" + task);  // builds each run
    CHECK(plan.name == task);
    CHECK(plan.runs.size() == 9 * 3);
    std::vector<std::string> variants;
    for (const qkv::ablate::Variant& v : plan.variants) variants.push_back(v.name);
    CHECK(variants == qkv::ablate::default_variant_names());
    CHECK(plan.seeds == std::vector<std::uint64_t>{1, 2, 3});
  }
}

TEST_CASE("sweep configs: a run's config is its base config with the variant's keys changed") {
  const std::string dir = qkv::test::fresh_dir("sweep_configs_runs");
  const qkv::ablate::SweepPlan plan = plan_shipped("copy", dir + "/copy");
  const qkv::ablate::PlannedRun& run = plan.runs[4 * 3 + 1];  // qk=identity, seed 2
  REQUIRE(run.variant.name == "qk=identity");
  REQUIRE(run.seed == 2);
  // copy.yaml itself with the same keys set the way a user would with --set.
  qkv::train::Config expected = qkv::train::load_config(
      (kSweeps.parent_path() / "copy.yaml").string(),
      {"seed=2", "train.steps=" + std::to_string(plan.steps), "train.stop_at_seq_acc=0",
       "train.threads=1", "model.attention.wq=identity", "model.attention.wk=identity"});
  const std::unique_ptr<qkv::tasks::Task> task = expected.make_task();
  qkv::core::Rng rng(2);
  qkv::layers::build_model(expected.model, task->vocab_size(), task->max_seq_len(), rng);
  CHECK(run.config_yaml == qkv::train::to_yaml(expected));
}

TEST_CASE("sweep configs: qkv train's reader refuses a sweep config, saying what to run") {
  CHECK_THROWS_WITH_AS(qkv::train::load_config((kSweeps / "copy.yaml").string()),
                       doctest::Contains("ablate: this is a sweep config: `qkv ablate` reads this "
                                         "section"),
                       qkv::ConfigError);
}
