// Data-parallel training without MPI: two threads of this process stand in for two ranks
// (ThreadRanks, a Communicator over shared memory), so the normal build's suite checks the
// Trainer's data-parallel path; tests/mpi checks the same over MPI processes. The 1e-5
// bound on the weights is tests/mpi's (test_data_parallel.cpp says why).
#include <doctest/doctest.h>

#include <cmath>
#include <condition_variable>
#include <csignal>
#include <exception>
#include <filesystem>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "../run_util.hpp"
#include "tests/train/data_parallel_run.hpp"
#include "io/checkpoint.hpp"
#include "train/communicator.hpp"
#include "train/config.hpp"
#include "train/data_parallel.hpp"
#include "train/trainer.hpp"

namespace {

using namespace qkv;
using test::data_parallel_config;
using test::kDataParallelTolerance;
using test::max_difference;
using test::train_run;
using test::Trained;

// The ranks of one "job", each a thread holding its own ThreadRanks::Rank. Collectives
// meet at a barrier; every rank sums the contributions in rank order, so all get the same
// bits, as MPI's do.
class ThreadRanks {
 public:
  explicit ThreadRanks(std::size_t size) : size_(size), slots_(size), flags_(size) {}

  class Rank final : public train::Communicator {
   public:
    Rank(ThreadRanks& job, std::size_t rank) : job_(job), rank_(rank) {}
    std::size_t rank() const override { return rank_; }
    std::size_t size() const override { return job_.size_; }
    void allreduce_sum(float* values, std::size_t count) override { sum(values, count); }
    void allreduce_sum(double* values, std::size_t count) override { sum(values, count); }
    void broadcast(std::string& bytes) override {
      if (rank_ == 0) job_.text_ = bytes;
      job_.wait();
      bytes = job_.text_;
      job_.wait();
    }
    void barrier() override { job_.wait(); }

   protected:
    std::size_t first_failure(bool failed, std::string& message) override {
      job_.flags_[rank_] = failed;
      if (failed) job_.slots_[rank_].assign(message.begin(), message.end());
      job_.wait();
      std::size_t first = size();
      for (std::size_t r = size(); r-- > 0;)
        if (job_.flags_[r]) first = r;
      if (first < size()) message.assign(job_.slots_[first].begin(), job_.slots_[first].end());
      job_.wait();
      return first;
    }

   private:
    template <class T> void sum(T* values, std::size_t count) {
      job_.slots_[rank_].assign(reinterpret_cast<char*>(values),
                                reinterpret_cast<char*>(values + count));
      job_.wait();
      for (std::size_t i = 0; i < count; ++i) {
        T total = 0;
        for (const std::vector<char>& slot : job_.slots_) total += reinterpret_cast<const T*>(slot.data())[i];
        values[i] = total;
      }
      job_.wait();
    }

    ThreadRanks& job_;
    std::size_t rank_;
  };

  // Runs body(rank's communicator) on one thread per rank; rethrows a rank's exception.
  void run(const std::function<void(Rank&)>& body) {
    std::vector<std::exception_ptr> errors(size_);
    std::vector<std::thread> threads;
    for (std::size_t r = 0; r < size_; ++r)
      threads.emplace_back([&, r] {
        Rank rank(*this, r);
        try {
          body(rank);
        } catch (...) {
          errors[r] = std::current_exception();
        }
      });
    for (std::thread& thread : threads) thread.join();
    for (const std::exception_ptr& error : errors)
      if (error) std::rethrow_exception(error);
  }

 private:
  void wait() {
    std::unique_lock<std::mutex> lock(mutex_);
    const std::size_t generation = generation_;
    if (++arrived_ == size_) {
      arrived_ = 0;
      ++generation_;
      changed_.notify_all();
      return;
    }
    changed_.wait(lock, [&] { return generation_ != generation; });
  }

  std::size_t size_;
  std::vector<std::vector<char>> slots_;
  std::vector<char> flags_;
  std::string text_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::size_t arrived_ = 0, generation_ = 0;
};

}  // namespace

TEST_CASE("data parallel: rank_rows splits the global batch evenly, in rank order") {
  CHECK(train::rank_rows(8, 0, 2).begin == 0);
  CHECK(train::rank_rows(8, 0, 2).end == 4);
  CHECK(train::rank_rows(8, 1, 2).begin == 4);
  CHECK(train::rank_rows(8, 1, 2).end == 8);
  CHECK(train::rank_rows(6, 2, 3).begin == 4);
  CHECK_THROWS_WITH_AS(train::rank_rows(7, 0, 2),
                       doctest::Contains("train.batch_size 7 does not split over 2 ranks"),
                       std::invalid_argument);
}

TEST_CASE("data parallel: take_rows keeps the rows' tokens, masks and labels") {
  const auto config = data_parallel_config();
  const auto task = config.make_task();
  core::Rng rng(5);
  const tasks::Batch batch = task->sample(4, rng);
  const tasks::Batch part = train::take_rows(batch, {1, 3});
  const std::size_t T = batch.seq_len();
  REQUIRE(part.batch_size() == 2);
  REQUIRE(part.seq_len() == T);
  for (std::size_t i = 0; i < 2 * T; ++i) {
    CHECK(part.inputs.values[i] == batch.inputs.values[T + i]);
    CHECK(part.targets.values[i] == batch.targets.values[T + i]);
    CHECK(part.mask[i] == batch.mask[T + i]);
    CHECK(part.answer_mask[i] == batch.answer_mask[T + i]);
  }
}

TEST_CASE("data parallel: 2 ranks train what 1 process trains on the global batch, the same bits on both") {
  const std::string dir = test::fresh_dir("data_parallel");
  ThreadRanks job(2);
  std::vector<Trained> ranks(2);
  job.run([&](ThreadRanks::Rank& rank) { ranks[rank.rank()] = train_run(data_parallel_config(), dir + "/two", &rank); });
  CHECK(ranks[0].weights == ranks[1].weights);
  const Trained alone = train_run(data_parallel_config(), dir + "/one", nullptr);
  CHECK(max_difference(ranks[0].weights, alone.weights) <= kDataParallelTolerance);
  CHECK(ranks[0].summary.last_eval.samples == 50);
  CHECK(ranks[0].summary.last_eval.token_acc == alone.summary.last_eval.token_acc);
  CHECK(ranks[0].summary.last_eval.loss == doctest::Approx(alone.summary.last_eval.loss).epsilon(1e-5));
  // Rank 0 alone wrote the folder, and its checkpoint says how it was trained.
  const io::Checkpoint checkpoint = io::load_checkpoint(dir + "/two/last.safetensors");
  CHECK(checkpoint.ranks == 2);
  CHECK(checkpoint.rank_batch == 4);
  CHECK(test::read_jsonl(dir + "/two/metrics.jsonl").size() ==
        test::read_jsonl(dir + "/one/metrics.jsonl").size());
}

TEST_CASE("data parallel: a resume on another number of ranks needs the same global batch") {
  const std::string dir = test::fresh_dir("data_parallel_resume");
  train_run(data_parallel_config({"train.steps=4"}), dir + "/run", nullptr);
  ThreadRanks job(2);
  CHECK_THROWS_WITH(
      job.run([&](ThreadRanks::Rank& rank) {
        train_run(data_parallel_config({"train.batch_size=4"}), dir + "/run", &rank, /*resume=*/true);
      }),
      doctest::Contains("the run was trained on 1 rank(s) with global batch 8 (8 rows each), and "
                        "this job has 2 rank(s) with train.batch_size 4"));
  std::vector<Trained> ranks(2);
  job.run([&](ThreadRanks::Rank& rank) {
    ranks[rank.rank()] = train_run(data_parallel_config(), dir + "/run", &rank, /*resume=*/true);
  });
  const Trained alone = train_run(data_parallel_config(), dir + "/alone", nullptr);
  CHECK(ranks[0].summary.steps == 8);
  CHECK(max_difference(ranks[0].weights, alone.weights) <= kDataParallelTolerance);
}

TEST_CASE("data parallel: one rank's error building its trainer is thrown on every rank") {
  const std::string dir = test::fresh_dir("data_parallel_errors");
  ThreadRanks job(2);
  std::vector<std::string> messages(2);
  job.run([&](ThreadRanks::Rank& rank) {
    try {
      train_run(data_parallel_config(rank.rank() == 1
                                         ? std::vector<std::string>{"model.dropout=0.1"}
                                         : std::vector<std::string>{}),
                dir + "/run", &rank);
    } catch (const std::exception& error) {
      messages[rank.rank()] = error.what();
    }
  });
  CHECK(messages[0].find("rank 1: model.dropout 0.1 on 2 ranks") == 0);
  CHECK(messages[1].find("model.dropout 0.1 on 2 ranks") == 0);
}

TEST_CASE("data parallel: ranks agree on a stop: SIGINT over SIGTERM over none") {
  ThreadRanks job(2);
  std::vector<int> agreed(2);
  const auto agree = [&](int on_rank_0, int on_rank_1) {
    job.run([&](ThreadRanks::Rank& rank) {
      agreed[rank.rank()] = train::agree_on_signal(rank, rank.rank() == 0 ? on_rank_0 : on_rank_1);
    });
    CHECK(agreed[0] == agreed[1]);
    return agreed[0];
  };
  CHECK(agree(0, 0) == 0);
  CHECK(agree(0, SIGTERM) == SIGTERM);
  CHECK(agree(SIGTERM, SIGINT) == SIGINT);
}
