// Each variant's learned attention parameters, as the sweep builds its model: counted by
// hand from the shapes in layers/attention.hpp (C = d_model 16, H = 2 heads, one layer; a
// projection C -> n has n·C weights and n biases).
#include <doctest/doctest.h>

#include <map>
#include <string>

#include "ablate/plan.hpp"
#include "core/random.hpp"
#include "layers/build_model.hpp"
#include "tests/ablate/ablate_test_util.hpp"

namespace {

constexpr std::size_t C = 16, H = 2;
constexpr std::size_t kSquare = C * C + C;  // C -> C with its bias

}  // namespace

TEST_CASE("ablate: each variant's learned attention parameters") {
  const std::map<std::string, std::size_t> expected = {
      {"learned", 4 * kSquare},                          // wq, wk, wv, wo
      {"none", 0},                                       // no projection at all
      {"q=identity", (H * C * C + H * C) + 2 * kSquare},  // wk C -> H·C (Dk = C), wv, wo
      {"k=identity", (H * C * C + H * C) + 2 * kSquare},
      {"qk=identity", 2 * kSquare},                      // wv, wo
      {"v=identity", 2 * kSquare + (C * H * C + C)},     // wq, wk; wo H·C -> C (Dv = C)
      {"qk=frozen", 2 * kSquare},                        // wq, wk are buffers
      {"qk=merged", H * C * C + 2 * kSquare},            // wqk (H, C, C), no bias
      {"qk=tied", 3 * kSquare},                          // wq (= wk), wv, wo
      {"o=none", 3 * kSquare},
      {"qkvo=frozen", 0}};
  const std::string dir = qkv::test::fresh_dir("ablate_parameter_counts");
  const std::string config = qkv::test::write_text(dir + "/tiny.yaml", qkv::test::tiny_sweep_config());
  qkv::ablate::SweepRequest request;
  request.config_path = config;
  request.out_dir = dir + "/sweep";
  std::vector<std::string> names;
  for (const auto& [name, count] : expected) names.push_back(name);
  request.variants = names;
  request.seeds = 1;
  const qkv::ablate::SweepPlan plan = qkv::ablate::plan_sweep(request);
  REQUIRE(plan.runs.size() == expected.size());
  for (const qkv::ablate::PlannedRun& run : plan.runs) {
    CAPTURE(run.variant.name);
    qkv::train::Config c = qkv::ablate::load_run_config(plan, run);
    const auto task = c.make_task();
    qkv::core::Rng rng(c.seed);
    const auto model = qkv::layers::build_model(c.model, task->vocab_size(), task->max_seq_len(), rng);
    CHECK(model->attention_parameter_count() == expected.at(run.variant.name));
  }
}

TEST_CASE("ablate: a variant this config cannot build is an error naming the run") {
  const std::string dir = qkv::test::fresh_dir("ablate_bad_variant");
  const std::string config = qkv::test::write_text(dir + "/tiny.yaml", qkv::test::tiny_sweep_config());
  qkv::ablate::SweepRequest request;
  request.config_path = config;
  request.out_dir = dir + "/sweep";
  request.variants = std::vector<std::string>{"learned", "v=identity+o=none"};
  // No wo and H·Dv = 2·16 != 16: the heads side by side are not the residual's width.
  CHECK_THROWS_WITH(qkv::ablate::plan_sweep(request), doctest::Contains("v=identity+o=none seed 1: "));
}
