// train::Communicator over MPI_COMM_WORLD (see mpi_communicator.hpp).
#include "mpi/mpi_communicator.hpp"

#include <algorithm>
#include <climits>
#include <cstdint>
#include <stdexcept>

#include <mpi.h>

namespace qkv::mpi {

namespace {

// MPI's calls return an error code only when the error handler is MPI_ERRORS_RETURN; the
// default (MPI_ERRORS_ARE_FATAL) ends the job, so this check is for a handler set by a
// user's program.
void check(int code, const char* call) {
  if (code == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(code, text, &length);
  throw std::runtime_error(std::string(call) + " failed: " + std::string(text, length));
}

template <class T>
void allreduce_in_pieces(T* values, std::size_t count, MPI_Datatype type) {
  for (std::size_t done = 0; done < count;) {
    const int piece = static_cast<int>(std::min<std::size_t>(count - done, INT_MAX));
    check(MPI_Allreduce(MPI_IN_PLACE, values + done, piece, type, MPI_SUM, MPI_COMM_WORLD),
          "MPI_Allreduce");
    done += static_cast<std::size_t>(piece);
  }
}

}  // namespace

MpiCommunicator::MpiCommunicator() {
  int rank = 0, size = 1;
  check(MPI_Comm_rank(MPI_COMM_WORLD, &rank), "MPI_Comm_rank");
  check(MPI_Comm_size(MPI_COMM_WORLD, &size), "MPI_Comm_size");
  rank_ = static_cast<std::size_t>(rank);
  size_ = static_cast<std::size_t>(size);
}

void MpiCommunicator::allreduce_sum(float* values, std::size_t count) {
  allreduce_in_pieces(values, count, MPI_FLOAT);
}

void MpiCommunicator::allreduce_sum(double* values, std::size_t count) {
  allreduce_in_pieces(values, count, MPI_DOUBLE);
}

// The length first (as 64 bits), then the bytes, in pieces of at most INT_MAX.
void MpiCommunicator::broadcast(std::string& bytes) {
  std::uint64_t length = bytes.size();
  check(MPI_Bcast(&length, 1, MPI_UINT64_T, 0, MPI_COMM_WORLD), "MPI_Bcast");
  bytes.resize(length);
  for (std::uint64_t done = 0; done < length;) {
    const int piece = static_cast<int>(std::min<std::uint64_t>(length - done, INT_MAX));
    check(MPI_Bcast(bytes.data() + done, piece, MPI_CHAR, 0, MPI_COMM_WORLD), "MPI_Bcast");
    done += static_cast<std::uint64_t>(piece);
  }
}

void MpiCommunicator::barrier() { check(MPI_Barrier(MPI_COMM_WORLD), "MPI_Barrier"); }

// The lowest failing rank by a MIN reduction, then its message broadcast from it.
std::size_t MpiCommunicator::first_failure(bool failed, std::string& message) {
  int mine = failed ? static_cast<int>(rank_) : static_cast<int>(size_);
  int first = 0;
  check(MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD), "MPI_Allreduce");
  if (first == static_cast<int>(size_)) return size_;
  // A message is one line for a person (qkv cuts its own at 4000 bytes).
  constexpr std::size_t kMaxMessage = 65536;
  if (message.size() > kMaxMessage) message.resize(kMaxMessage);
  std::uint64_t length = message.size();
  check(MPI_Bcast(&length, 1, MPI_UINT64_T, first, MPI_COMM_WORLD), "MPI_Bcast");
  message.resize(length);
  if (length > 0)
    check(MPI_Bcast(message.data(), static_cast<int>(length), MPI_CHAR, first, MPI_COMM_WORLD),
          "MPI_Bcast");
  failure_agreed_ = true;
  return static_cast<std::size_t>(first);
}

}  // namespace qkv::mpi
