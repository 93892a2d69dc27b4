// What `qkv inspect` and `qkv report` share (internal to app/): a checkpoint loaded and
// inspected in one call.
//
//   CheckpointInputs inputs;
//   inputs.sample = 4;                     // or inputs.text = "a b c SEP a b c"
//   inspect::Inspection in = inspect_checkpoint("runs/copy/best.safetensors", inputs);
//   std::fputs(inspect::text_report(in).c_str(), stdout);
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "inspect/inspection.hpp"

namespace qkv::app {

struct CheckpointInputs {
  std::string text;                    // --input: token names, as the model reads them
  std::optional<std::size_t> sample;   // --sample N: held-out examples
  std::optional<std::uint64_t> seed;   // of the sampled examples (default: the run's)
  std::size_t importance_samples = 256;  // held-out examples for head importance; 0: none
};

// Loads the checkpoint (its config, task and weights) and inspects it: weights always;
// maps, scores and importance when there are inputs. Errors are one line naming the file
// (a file that is not a checkpoint, truncated, of other shapes) or the token (an unknown
// token in `text`, listing the known ones).
inspect::Inspection inspect_checkpoint(const std::string& path, const CheckpointInputs& inputs);

}  // namespace qkv::app
