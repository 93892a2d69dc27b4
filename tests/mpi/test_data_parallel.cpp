// Data-parallel training over MPI (issue #13), run as `mpirun -np 2 qkv_mpi_tests`: every
// rank runs every test case, in order, so the collectives inside them meet.
//
// The tolerance: 2 ranks of b rows and 1 process of 2b rows compute the same gradient in
// another order of float32 additions (each rank sums its own rows' contributions, the
// allreduce adds the two, and the weight on each rank's share, n_r / n, is one more
// rounding), so each step's gradient differs by a few ulp of its partial sums and each
// update by about an ulp of the weights it changes. Plain SGD carries that into the
// weights without amplifying it: after K = 8 steps the largest difference measured is
// 2.4e-7 (2 ulp of a weight near 1). The bound, 1e-5, is 40 times that and 900 times
// below what a wrong weighting moves: averaging the ranks' means instead of weighing them
// by their answer tokens (prompts of 2 to 9 tokens make unequal shards) changes the
// weights by 8.7e-3 here. SGD rather than Adam: Adam divides by sqrt(v), so an element
// whose gradient is itself at round-off level (a sum that cancels) moves by up to lr
// either way, and a bound on the weights would then say nothing.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "mpi/session.hpp"
#include "train/communicator.hpp"
#include "train/config.hpp"
#include "train/trainer.hpp"
#include "tests/train/data_parallel_run.hpp"

namespace {

using namespace qkv;
namespace fs = std::filesystem;
using test::max_difference;
using test::train_run;
using test::Trained;
constexpr double kTolerance = test::kDataParallelTolerance;

// A fresh folder of the test's own (every rank runs on this machine, and sees it).
std::string shared_folder(const std::string& name) {
  const std::string dir = std::string(QKV_MPI_TEST_DIR) + "/" + name;
  if (train::world().rank() == 0) fs::remove_all(dir);
  train::world().barrier();
  return dir;
}

std::string bytes_of(const std::vector<float>& values) {
  return std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(float));
}

}  // namespace

TEST_CASE("data parallel: 2 ranks of b rows train what 1 process trains on 2b, the same bits on every rank") {
  train::Communicator& world = train::world();
  REQUIRE(world.size() == 2);
  const std::string dir = shared_folder("weights");
  const Trained ranks = train_run(test::data_parallel_config(), dir + "/two", &world);

  std::string root = bytes_of(ranks.weights);
  world.broadcast(root);
  CHECK_MESSAGE(root == bytes_of(ranks.weights), "rank " << world.rank() << "'s weights differ from rank 0's");

  if (world.rank() != 0) return;
  const Trained alone = train_run(test::data_parallel_config(), dir + "/one", nullptr);
  const double difference = max_difference(ranks.weights, alone.weights);
  MESSAGE("largest weight difference, 2 ranks against 1: " << difference);
  CHECK(difference <= kTolerance);
  // The evaluation, split over the ranks and summed: the whole held-out set's counts.
  CHECK(ranks.summary.last_eval.samples == 50);
  CHECK(ranks.summary.last_eval.token_acc == alone.summary.last_eval.token_acc);
  CHECK(ranks.summary.last_eval.seq_acc == alone.summary.last_eval.seq_acc);
  CHECK(ranks.summary.last_eval.loss == doctest::Approx(alone.summary.last_eval.loss).epsilon(1e-5));
}

TEST_CASE("data parallel: a run resumes on 2 ranks bit for bit, on 1 process with its global batch, and not with another") {
  train::Communicator& world = train::world();
  const std::string dir = shared_folder("resume");
  const Trained whole = train_run(test::data_parallel_config(), dir + "/whole", &world);
  train_run(test::data_parallel_config({"train.steps=4"}), dir + "/split", &world);
  std::string copy = dir + "/split-copy";
  if (world.rank() == 0) fs::copy(dir + "/split", copy, fs::copy_options::recursive);
  const Trained resumed = train_run(test::data_parallel_config(), dir + "/split", &world, /*resume=*/true);
  CHECK(bytes_of(resumed.weights) == bytes_of(whole.weights));

  if (world.rank() != 0) return;
  CHECK_THROWS_WITH(train_run(test::data_parallel_config({"train.batch_size=4"}), copy, nullptr, true),
                    doctest::Contains("the run was trained on 2 rank(s) with global batch 8 (4 "
                                      "rows each), and this job has 1 rank(s) with "
                                      "train.batch_size 4"));
  const Trained alone = train_run(test::data_parallel_config(), copy, nullptr, /*resume=*/true);
  CHECK(max_difference(alone.weights, whole.weights) <= kTolerance);
}

TEST_CASE("data parallel: an error while a rank builds its trainer is every rank's, with its message") {
  train::Communicator& world = train::world();
  const std::string dir = shared_folder("errors");
  SUBCASE("one rank's") {
    // rank 1 alone asks for dropout, which data-parallel training refuses
    const std::vector<std::string> sets =
        world.rank() == 1 ? std::vector<std::string>{"model.dropout=0.1"}
                          : std::vector<std::string>{};
    if (world.rank() == 1)
      CHECK_THROWS_WITH_AS(train_run(test::data_parallel_config(sets), dir + "/dropout", &world),
                           doctest::Contains("model.dropout 0.1 on 2 ranks"), std::runtime_error);
    else
      CHECK_THROWS_WITH_AS(train_run(test::data_parallel_config(sets), dir + "/dropout", &world),
                           doctest::Contains("rank 1: model.dropout 0.1 on 2 ranks"),
                           train::RankFailed);
  }
  SUBCASE("every rank's") {
    CHECK_THROWS_WITH(train_run(test::data_parallel_config({"train.batch_size=7"}), dir + "/odd", &world),
                      doctest::Contains("train.batch_size 7 does not split over 2 ranks"));
  }
}

int main(int argc, char** argv) {
  qkv::mpi::Session session(argc, argv);
  doctest::Context context(argc, argv);
  return session.finish(context.run());
}
