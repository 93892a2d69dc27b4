// Communicator: the processes one job runs on, as data-parallel training and a sweep over
// several processes see them (issue #13). This header knows nothing of MPI: the default is
// the single process (rank 0 of 1, every collective a no-op), and a program launched with
// `mpirun` installs another (mpi/mpi_communicator.hpp, built with -DQKV_MPI=ON) with
// set_world() before any verb runs.
//
// Every collective must be called by every rank in the same order. A rank that fails
// between collectives would leave the others waiting, so the rules are:
//   - before the first collective of a piece of work, agree(): every rank passes its own
//     error (or none) and every rank throws when any rank failed, all with the message of
//     the lowest failing rank (its rank named), so the job stops on one clean message;
//   - a failure after that (a full disk on rank 0, an exception in a step) is fatal to the
//     job: the program prints it and ends every rank at once (mpi/mpi_main.hpp).
//
//   train::Communicator& world = train::world();
//   std::vector<float> grads = ...;
//   world.allreduce_sum(grads.data(), grads.size());   // every rank: the sum of all ranks'
//   std::string text = world.rank() == 0 ? read_file(path) : std::string();
//   world.broadcast(text);                              // every rank: rank 0's bytes
//   Config config;
//   world.agree(attempt([&] { config = load_config(path); }));   // throws on every rank
#pragma once

#include <cstddef>
#include <exception>
#include <memory>
#include <stdexcept>
#include <string>

namespace qkv::train {

// What agree() throws on the ranks that did not fail when another did: what() is
// "rank R: <its message>", rank() is R.
class RankFailed : public std::runtime_error {
 public:
  RankFailed(const std::string& message, std::size_t rank)
      : std::runtime_error(message), rank_(rank) {}
  std::size_t rank() const { return rank_; }

 private:
  std::size_t rank_;
};

class Communicator {
 public:
  virtual ~Communicator() = default;

  virtual std::size_t rank() const = 0;  // 0 .. size() - 1
  virtual std::size_t size() const = 0;  // the processes of the job, at least 1

  // In place: every rank ends with the element-wise sum over all ranks (the same bits on
  // every rank: Open MPI's reductions combine in one order for all).
  virtual void allreduce_sum(float* values, std::size_t count) = 0;
  virtual void allreduce_sum(double* values, std::size_t count) = 0;
  // Every rank ends with rank 0's bytes (the others' are replaced, whatever their size).
  virtual void broadcast(std::string& bytes) = 0;
  // Waits until every rank has reached it.
  virtual void barrier() = 0;
  // Every rank passes its own error (null: none). Returns when no rank failed; otherwise
  // the lowest failing rank rethrows its own error and every other rank throws RankFailed
  // with that rank's message.
  void agree(const std::exception_ptr& error);

 protected:
  // The lowest failing rank and its message, every rank calling it with its own (failed:
  // whether it failed). Returns size() when none failed.
  virtual std::size_t first_failure(bool failed, std::string& message) = 0;
};

// One process: rank 0 of 1.
class SingleProcess final : public Communicator {
 public:
  std::size_t rank() const override { return 0; }
  std::size_t size() const override { return 1; }
  void allreduce_sum(float*, std::size_t) override {}
  void allreduce_sum(double*, std::size_t) override {}
  void broadcast(std::string&) override {}
  void barrier() override {}

 protected:
  std::size_t first_failure(bool failed, std::string&) override { return failed ? 0 : 1; }
};

// The error f() throws, or null when it returns: what a rank passes to agree().
template <class F> std::exception_ptr attempt(F&& f) {
  try {
    f();
  } catch (...) {
    return std::current_exception();
  }
  return nullptr;
}

// Every rank's pending stop signal (0, SIGINT or SIGTERM), agreed: SIGINT if any rank has
// one, else SIGTERM if any rank has one, else 0. Every rank must call it.
int agree_on_signal(Communicator& communicator, int pending);

// The job's communicator: a SingleProcess unless set_world installed another.
Communicator& world();
// Installs the job's communicator (mpi/ at startup, before any verb runs); null restores
// the single process.
void set_world(std::unique_ptr<Communicator> communicator);

}  // namespace qkv::train
