// What a run needs from the machine, checked before anything is allocated: the memory a
// run will take (estimated from its config) against what the machine has available, and
// its BLAS threads against the cores it may run on. A config that cannot fit is an error
// that says which part would not fit, not an out-of-memory kill halfway into building the
// model; 64 threads on 2 cores is an error, not a hang at exit inside OpenBLAS.
//
//   MemoryEstimate need = estimate_memory(config, task->vocab_size(), task->max_seq_len(),
//                                         /*training=*/true);
//   check_memory(need);          // std::runtime_error: "the run needs about 41.2 GB ..."
//   std::size_t cores = available_cores();
//
// The estimate is of the reference architecture (docs/DESIGN.md), float32: parameters
// (exact for it, `qk: merged` included), their gradients, the optimizer's state (two
// buffers per parameter for adam and adamw, one for sgd with momentum), and the largest
// step's activations: a training step keeps about 12·C + 2·F values per position and
// layer plus two H·T score maps, and 3·V for the logits and their softmax, and as many
// gradients again; an evaluation batch (256 rows) keeps the values without gradients. A
// user's layer in a slot is counted as the built-in it replaces.
#pragma once

#include <cstddef>
#include <optional>
#include <string>

#include "train/config.hpp"

namespace qkv::train {

struct MemoryEstimate {
  std::size_t parameters = 0;   // bytes
  std::size_t gradients = 0;
  std::size_t optimizer = 0;
  std::size_t activations = 0;  // the largest step's (training or evaluation batch)
  std::size_t batch_rows = 0;   // the rows of that step
  std::size_t positions = 0;    // its positions per row
  std::string optimizer_name;   // config.optim.type; "" when not training

  std::size_t total() const;
};

// `vocab` and `positions` are the task's vocab_size() and max_seq_len(). Without
// `training`, only the parameters and an evaluation batch's activations count.
MemoryEstimate estimate_memory(const Config& config, std::size_t vocab, std::size_t positions,
                               bool training);

// MemAvailable of /proc/meminfo in bytes; nullopt when it cannot be read (then nothing is
// checked).
std::optional<std::size_t> available_memory();

// Throws std::runtime_error when need.total() exceeds `available`, naming every part:
// "the run needs about 41.2 GB of memory, and 22.3 GB are available (MemAvailable in
// /proc/meminfo): parameters 1.1 GB, their gradients 1.1 GB, optimizer state (adamw)
// 2.2 GB, activations of one step (32 rows x 512 positions) 36.8 GB; lower model.d_model,
// model.layers, train.batch_size or the task's lengths".
void check_memory(const MemoryEstimate& need,
                  std::optional<std::size_t> available = available_memory());

// The cores this process may run on (its CPU affinity), at least 1.
std::size_t available_cores();

// "1.5 GB", "312.0 MB", "4.0 kB": decimal units, one decimal.
std::string format_bytes(double bytes);

}  // namespace qkv::train
