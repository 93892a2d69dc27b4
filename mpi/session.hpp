// Session: one process of an MPI job running the qkv command. It initializes MPI, installs
// the MPI communicator as train::world() (so `qkv train` trains data-parallel and `qkv
// ablate` spreads its runs), gives the command the streams it should write to, and ends
// the process so that a failing rank never leaves the others waiting.
//
//   int main(int argc, char** argv) {            // app/main_mpi.cpp
//     qkv::mpi::Session session(argc, argv);
//     int code = qkv::app::run_cli({argv, argv + argc}, session.out(), session.err());
//     return session.finish(code);
//   }
//
// Rank 0 writes to stdout and stderr. The other ranks' output is dropped (every rank runs
// the same command; one copy of the progress is enough), and their errors are kept in
// memory until finish(), which prints them only when they are news.
//
// finish(code):
//   0, or 130/143 (stopped by a signal, which every rank received and agreed on): MPI is
//   finalized and the code returned;
//   another code after an error every rank agreed on (Communicator::agree: a bad config,
//   a locked run folder, a bad checkpoint; rank 0 printed it): finalized, code returned;
//   any other failure (an exception in a step, a full disk, a failed run of a sweep): the
//   rank prints its message ("qkv: [rank R of N] error: ...") and calls MPI_Abort, which
//   ends every rank of the job at once with that code. A rank killed outright is noticed
//   by mpirun, which ends the job the same way.
#pragma once

#include <cstdio>

namespace qkv::mpi {

class MpiCommunicator;

class Session {
 public:
  // MPI_Init (MPI_THREAD_FUNNELED: a sweep's trainings run on threads, only the main
  // thread calls MPI). Throws std::runtime_error if MPI cannot start.
  Session(int& argc, char**& argv);
  ~Session();  // finalizes MPI if finish() did not
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  std::FILE* out() const { return out_; }
  std::FILE* err() const { return err_; }
  // Ends the rank's part of the job (see above); returns the code for main to return.
  int finish(int code);

 private:
  std::FILE* out_ = stdout;
  std::FILE* err_ = stderr;
  char* err_text_ = nullptr;  // the error buffer's memory (ranks > 0)
  std::size_t err_size_ = 0;
  bool finalized_ = false;
  const MpiCommunicator* world_ = nullptr;  // installed as train::world(), which owns it
};

}  // namespace qkv::mpi
