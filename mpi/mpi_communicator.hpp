// MpiCommunicator: train::Communicator over MPI_COMM_WORLD (Open MPI), for `mpirun -np N
// qkv train|ablate ...`. Built only with -DQKV_MPI=ON; this header does not include
// <mpi.h>, so only mpi/'s own .cpp files compile against MPI.
//
//   qkv::mpi::Session session(argc, argv);   // MPI_Init; installs an MpiCommunicator
//   train::world().allreduce_sum(grads, n);   // one MPI_Allreduce
//
// MPI must be initialized (Session) before one is made and finalized after the last is
// used. Collectives take counts up to INT_MAX elements per call (MPI's int); a longer
// span is reduced in pieces.
#pragma once

#include <cstddef>
#include <string>

#include "train/communicator.hpp"

namespace qkv::mpi {

class MpiCommunicator final : public train::Communicator {
 public:
  MpiCommunicator();  // MPI_COMM_WORLD's rank and size

  std::size_t rank() const override { return rank_; }
  std::size_t size() const override { return size_; }
  void allreduce_sum(float* values, std::size_t count) override;
  void allreduce_sum(double* values, std::size_t count) override;
  void broadcast(std::string& bytes) override;
  void barrier() override;

  // Whether an agree() has thrown on this rank: the job then ends on an error every rank
  // knows (rank 0 prints it), not on one that needs MPI_Abort.
  bool failure_agreed() const { return failure_agreed_; }

 protected:
  std::size_t first_failure(bool failed, std::string& message) override;

 private:
  std::size_t rank_ = 0, size_ = 1;
  bool failure_agreed_ = false;
};

}  // namespace qkv::mpi
