// A rank that fails in the middle of a data-parallel training, as `qkv train` would on an
// exception in a step: rank 1 throws after its third step, while rank 0 goes on to the
// fourth step's allreduce. Run by failures.sh under mpirun, which expects the job to end at
// once, non-zero, with rank 1's message; without the Session's MPI_Abort rank 0 would wait
// for ever. argv[1]: the run folder.
#include <cstdio>
#include <stdexcept>

#include "mpi/session.hpp"
#include "train/communicator.hpp"
#include "train/config.hpp"
#include "train/trainer.hpp"

int main(int argc, char** argv) {
  qkv::mpi::Session session(argc, argv);
  int code = 0;
  try {
    if (argc != 2) throw std::invalid_argument("usage: qkv_mpi_failing_rank RUN_FOLDER");
    qkv::train::Config config = qkv::train::parse_config(
        "task: {type: copy, symbols: 6, min_len: 2, max_len: 4}\n"
        "model: {d_model: 16, heads: 2, layers: 1, d_ff: 32}\n"
        "train: {steps: 1000000, batch_size: 4, eval_every: 1000000, eval_samples: 4}\n",
        "failing_rank.yaml");
    qkv::train::TrainerOptions options;
    options.out_dir = argv[1];
    options.out = nullptr;
    options.communicator = &qkv::train::world();
    options.on_step = [](std::size_t step) {
      if (qkv::train::world().rank() == 1 && step == 3)
        throw std::runtime_error("rank 1 fails on purpose after step 3");
    };
    qkv::train::Trainer(config, options).run();
  } catch (const std::exception& error) {
    std::fprintf(session.err(), "qkv: error: %s\n", error.what());
    code = 1;
  }
  return session.finish(code);
}
