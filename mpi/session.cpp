// MPI's start and end for one process of the qkv command (see session.hpp).
#include "mpi/session.hpp"

#include <memory>
#include <stdexcept>
#include <string>

#include <mpi.h>

#include "mpi/mpi_communicator.hpp"

namespace qkv::mpi {

namespace {

// The exit codes of a stop by SIGINT or SIGTERM (app/cli.hpp): every rank got the signal.
bool stopped_by_signal(int code) { return code == 130 || code == 143; }

}  // namespace

Session::Session(int& argc, char**& argv) {
  int provided = 0;
  if (MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
    throw std::runtime_error("MPI_Init_thread failed: MPI could not start this process");
  auto world = std::make_unique<MpiCommunicator>();
  world_ = world.get();
  const bool root = world->rank() == 0;
  train::set_world(std::move(world));
  if (root) return;
  out_ = std::fopen("/dev/null", "w");
  err_ = open_memstream(&err_text_, &err_size_);
  if (out_ == nullptr || err_ == nullptr)
    throw std::runtime_error("cannot open the output streams of an MPI rank");
}

Session::~Session() {
  if (!finalized_) {
    train::set_world(nullptr);
    MPI_Finalize();
  }
  if (out_ != stdout) std::fclose(out_);
  if (err_ != stderr) std::fclose(err_);
  std::free(err_text_);
}

int Session::finish(int code) {
  std::fflush(out_);
  std::fflush(err_);
  if (code != 0 && !stopped_by_signal(code) && !world_->failure_agreed()) {
    // news to the other ranks: say it here, then end them all.
    if (err_ != stderr && err_size_ > 0) {
      const std::string text(err_text_, err_size_);
      const std::string tag = "[rank " + std::to_string(world_->rank()) + " of " +
                              std::to_string(world_->size()) + "] ";
      std::fprintf(stderr, "%s",
                   (text.rfind("qkv: ", 0) == 0 ? "qkv: " + tag + text.substr(5) : tag + text)
                       .c_str());
    }
    std::fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, code);
  }
  train::set_world(nullptr);
  MPI_Finalize();
  finalized_ = true;
  return code;
}

}  // namespace qkv::mpi
