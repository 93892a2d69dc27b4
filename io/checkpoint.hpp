// Checkpoints: everything a run needs to continue exactly where it stopped, in one
// .safetensors file.
//
//   tensors        the model's weights by dotted name ("blocks.0.attn.wq.weight"), and the
//                  optimizer's state as "optim.<param>.<buffer>" ("optim.head.bias.exp_avg")
//   __metadata__   format and format_version, step, the RNG states, the resolved config
//                  (YAML), the optimizer's name and scalars (its step count is the schedule
//                  position), the task's state (the file task's vocabulary), the task's
//                  vocabulary (its token names in id order, a JSON list, for readers that
//                  have no qkv: examples/python/load_checkpoint.py), the best eval seq_acc
//                  so far, the run's time so far, and the processes that trained it
//                  (`ranks`, `rank_batch`: data-parallel training, train/data_parallel.hpp)
//
//   Checkpoint checkpoint;
//   checkpoint.weights = model.state();
//   checkpoint.optimizer = optimizer.export_state();
//   checkpoint.step = step;
//   checkpoint.rng_states["data"] = data_rng.state();
//   checkpoint.config_yaml = resolved_yaml;
//   save_checkpoint("runs/copy/last.safetensors", checkpoint);  // atomic
//   Checkpoint back = load_checkpoint("runs/copy/last.safetensors");
//   model.load_state(back.weights);  // names the tensor and both shapes on a mismatch
//
// A checkpoint is data from someone else. Loading validates the file (safetensors.hpp:
// its structure and qkv's checksums of every tensor and of the metadata), the metadata,
// and every value: a NaN or infinite weight or optimizer state is refused, naming the
// tensor and the element. It throws std::runtime_error naming the file and what is wrong.
// A file without checksums (written by qkv before it wrote them, or by another tool)
// loads after a one-line warning on `warnings` (nullptr: none).
#pragma once

#include <cstddef>
#include <cstdio>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/tensor.hpp"
#include "optim/optimizer.hpp"

namespace qkv::io {

// Bumped whenever the meaning of a checkpoint's contents changes. 2: tasks end every
// answer with EOS (id 2), which moved their own tokens' ids, and the metadata holds the
// vocabulary. Version 1 files still load, with an empty vocabulary.
constexpr int kCheckpointFormatVersion = 2;
constexpr int kOldestCheckpointFormatVersion = 1;

struct Checkpoint {
  std::map<std::string, core::Tensor> weights;
  std::string optimizer_name;  // "adam", "adamw", "sgd"
  optim::OptimizerState optimizer;
  std::size_t step = 0;                           // training steps completed
  std::map<std::string, std::string> rng_states;  // core::Rng::state() by role ("data", ...)
  std::string config_yaml;                        // the resolved config
  std::string task_state;                         // Task::state(): "" for generated tasks
  std::vector<std::string> vocabulary;            // Task::token_names(); none in version 1
  std::optional<double> best_seq_acc;             // best eval seq_acc so far
  double elapsed_s = 0;                           // training time so far
  // The processes of the data-parallel training that wrote it and the rows of the batch
  // each one trained per step (train.batch_size = ranks x rank_batch). A file written
  // before qkv recorded them reads as 1 process and rank_batch 0 (unknown: the whole batch).
  std::size_t ranks = 1;
  std::size_t rank_batch = 0;
};

// Atomic, and streamed from the checkpoint's tensors (write_safetensors): the file's bytes
// are encode_checkpoint's without ever being one buffer in memory.
void save_checkpoint(const std::string& path, const Checkpoint& checkpoint);
Checkpoint load_checkpoint(const std::string& path, std::FILE* warnings = stderr);

// The file's bytes, and back; `source` names the bytes' origin in errors and warnings.
std::string encode_checkpoint(const Checkpoint& checkpoint);
Checkpoint decode_checkpoint(const std::string& bytes, const std::string& source,
                             std::FILE* warnings = stderr);

}  // namespace qkv::io
