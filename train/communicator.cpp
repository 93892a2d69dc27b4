// The job's installed communicator and the agreement on errors (see communicator.hpp).
#include "train/communicator.hpp"

#include <csignal>
#include <utility>

namespace qkv::train {

namespace {

std::unique_ptr<Communicator>& installed() {
  static std::unique_ptr<Communicator> communicator = std::make_unique<SingleProcess>();
  return communicator;
}

std::string message_of(const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return "an exception that is not a std::exception";
  }
}

}  // namespace

void Communicator::agree(const std::exception_ptr& error) {
  std::string message = error ? message_of(error) : std::string();
  const std::size_t failed = first_failure(error != nullptr, message);
  if (failed >= size()) return;
  if (failed == rank()) std::rethrow_exception(error);
  throw RankFailed("rank " + std::to_string(failed) + ": " + message, failed);
}

int agree_on_signal(Communicator& communicator, int pending) {
  double signals[2] = {pending == SIGINT ? 1.0 : 0.0, pending == SIGTERM ? 1.0 : 0.0};
  communicator.allreduce_sum(signals, 2);
  return signals[0] > 0 ? SIGINT : signals[1] > 0 ? SIGTERM : 0;
}

Communicator& world() { return *installed(); }

void set_world(std::unique_ptr<Communicator> communicator) {
  installed() = communicator ? std::move(communicator) : std::make_unique<SingleProcess>();
}

}  // namespace qkv::train
