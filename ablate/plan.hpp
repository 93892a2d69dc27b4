// SweepPlan: what one `qkv ablate` sweep trains. A sweep config is a run config (usually
// `base: ../copy.yaml` and the budget) with an `ablate:` section:
//
//   ablate:
//     variants: [learned, none, qk=identity]  # [the nine of default_variant_names()]
//     seeds: 3                                # [3] runs per variant: seeds seed, seed+1, ...
//     target: 0.99                            # [0.99] held-out seq_acc that counts as solved
//
// The plan is every variant × seed, each a run folder `<out>/<variant>/seed-<s>/` whose
// config is the sweep config with, in this order: the command's --set assignments, the
// variant's overrides (variant.hpp), `seed=<s>`, `train.threads=1` (one BLAS thread per
// run: bit-for-bit resume and jobs that do not compete for cores) and
// `train.stop_at_seq_acc=0` (every run trains the whole budget: the comparison is the
// budget). So every run of a seed has the same data stream and held-out set (both follow
// the seed alone), and the variant changes only the attention.
//
// A run's state is read from its folder: no last.safetensors is a run to train from the
// start, one at step < train.steps a run to resume (the Trainer's own resume, bit for
// bit), one at train.steps a finished run, never trained again. The final checkpoint is
// written after the run's last metrics line, atomically, so a run killed at any moment is
// never taken for finished. A folder whose checkpoint holds another config than the plan's
// (the sweep config was edited since) is an error naming the first line that differs.
//
//   SweepRequest request;
//   request.config_path = "configs/ablations/copy.yaml";
//   request.seeds = 2;                            // overrides ablate.seeds
//   SweepPlan plan = plan_sweep(request);          // every run's config checked
//   for (const PlannedRun& run : plan.runs) std::printf("%s\n", run.dir.c_str());
//   train::Config config = load_run_config(plan, plan.runs[0]);   // for its Trainer
//
// Every error is a ConfigError (a key of the sweep config, the file and line it came from),
// std::invalid_argument (a variant name) or std::runtime_error (a run folder), prefixed
// with the variant and seed when it concerns one run.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "ablate/variant.hpp"
#include "strict_yaml/config_node.hpp"
#include "train/config.hpp"

namespace qkv::ablate {

constexpr std::size_t kMaxSeeds = 1000;

// The `ablate:` section.
struct SweepSettings {
  std::vector<Variant> variants;
  std::size_t seeds = 3;
  double target = 0.99;
};

// Reads the section (absent: the defaults) and marks its keys known; a key it does not
// know is a ConfigError with a suggestion.
SweepSettings read_sweep_settings(const ConfigNode& section);

// What the command asks; unset fields fall back on the config's ablate: section.
struct SweepRequest {
  std::string config_path;
  std::vector<std::string> sets;                      // --set key.path=value
  std::optional<std::vector<std::string>> variants;  // --variants
  std::optional<std::size_t> seeds;                   // --seeds
  std::string out_dir;                                // "": runs/<config name>-ablation
};

enum class RunState { fresh, partial, finished };

struct PlannedRun {
  Variant variant;
  std::uint64_t seed = 0;
  std::string dir;                     // <out>/<variant>/seed-<seed>
  std::vector<std::string> overrides;  // applied to the sweep config (see above)
  std::string config_yaml;             // its resolved config, as its checkpoints hold it
  RunState state = RunState::fresh;
  std::size_t step = 0;                // of its last.safetensors (0 when fresh)
  std::string label() const;           // "qk=identity seed 2"
};

struct SweepPlan {
  std::string config_path;
  std::string name;      // the config's name
  std::string out_dir;
  std::vector<Variant> variants;
  std::vector<std::uint64_t> seeds;
  double target = 0.99;
  std::size_t steps = 0;         // every run's train.steps
  std::size_t eval_samples = 0;  // every run's held-out examples
  std::vector<PlannedRun> runs;  // variant-major: every seed of the first variant, then ...
};

// Reads the sweep config, resolves every run's config (its model built once, so that a
// bad variant for this config is an error before anything trains) and reads each run
// folder's state.
SweepPlan plan_sweep(const SweepRequest& request);

// A run's config, loaded afresh (its own tree: configs are never shared between threads).
train::Config load_run_config(const SweepPlan& plan, const PlannedRun& run);

// Re-reads each run's state from its folder (after a sweep ran).
void refresh_states(SweepPlan& plan);

}  // namespace qkv::ablate
