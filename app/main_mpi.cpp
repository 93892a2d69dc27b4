// The qkv executable over MPI (built with -DQKV_MPI=ON in place of main.cpp): the same
// command, each process of `mpirun -np N qkv ...` one rank. `qkv train` trains
// data-parallel over the ranks and `qkv ablate` spreads its runs over them; every other
// verb runs on each rank alike, rank 0's output shown (mpi/session.hpp).
#include <string>
#include <vector>

#include "app/cli.hpp"
#include "core/allocator.hpp"
#include "mpi/session.hpp"

int main(int argc, char** argv) {
  qkv::mpi::Session session(argc, argv);
  qkv::core::tune_allocator();
  const int code = qkv::app::run_cli(std::vector<std::string>(argv, argv + argc), session.out(),
                                     session.err());
  return session.finish(code);
}
