// The sweep's runs, their configs and their folders' states (see plan.hpp).
#include "ablate/plan.hpp"

#include <filesystem>
#include <memory>
#include <stdexcept>

#include "core/random.hpp"
#include "io/checkpoint.hpp"
#include "layers/build_model.hpp"

namespace qkv::ablate {

namespace {

namespace fs = std::filesystem;

std::string stem(const std::string& path) { return fs::path(path).stem().string(); }

// The sweep config's tree with `overrides` applied and its ablate: section read.
ConfigNode load_tree(const std::string& config_path, const std::vector<std::string>& overrides,
                     SweepSettings* settings) {
  ConfigNode root = load_config_tree(config_path);
  for (const std::string& assignment : overrides) root.apply_override(assignment);
  const SweepSettings read = read_sweep_settings(root.child("ablate"));
  if (settings != nullptr) *settings = read;
  return root;
}

// The config as its run folder's checkpoint will hold it: every default of its layers
// recorded, which takes building the model once.
std::string resolved_yaml(train::Config& config) {
  const std::unique_ptr<tasks::Task> task = config.make_task();
  core::Rng rng(config.seed);
  layers::build_model(config.model, task->vocab_size(), task->max_seq_len(), rng);
  return train::to_yaml(config);
}

// The run's state from its folder; its checkpoint must hold the plan's config.
void read_state(PlannedRun& run, std::size_t steps) {
  const std::string last = (fs::path(run.dir) / "last.safetensors").string();
  if (!fs::exists(last)) {
    run.state = RunState::fresh;
    run.step = 0;
    return;
  }
  const io::Checkpoint checkpoint = io::load_checkpoint(last);
  if (checkpoint.config_yaml != run.config_yaml)
    throw std::runtime_error(run.label() + ": '" + last +
                             "' was trained with another config than this sweep's (" +
                             train::first_difference(checkpoint.config_yaml, run.config_yaml,
                                                     "sweep") +
                             "): a sweep's runs share one config; remove that folder, or "
                             "choose another --out");
  run.step = checkpoint.step;
  run.state = checkpoint.step >= steps ? RunState::finished : RunState::partial;
}

std::vector<std::string> run_overrides(const SweepRequest& request, const Variant& variant,
                                       std::uint64_t seed) {
  std::vector<std::string> overrides = request.sets;
  overrides.insert(overrides.end(), variant.overrides.begin(), variant.overrides.end());
  overrides.push_back("seed=" + std::to_string(seed));
  overrides.push_back("train.threads=1");
  overrides.push_back("train.stop_at_seq_acc=0");
  return overrides;
}

// The run's config as its checkpoint will hold it, its errors prefixed with the run.
std::string resolve_run(const SweepPlan& plan, const PlannedRun& run) {
  try {
    train::Config config = load_run_config(plan, run);
    return resolved_yaml(config);
  } catch (const ConfigError& error) {
    throw ConfigError(run.label() + ": " + error.what());
  } catch (const std::invalid_argument& error) {
    throw std::invalid_argument(run.label() + ": " + error.what());
  }
}

}  // namespace

std::string PlannedRun::label() const {
  return variant.name + " seed " + std::to_string(seed);
}

SweepSettings read_sweep_settings(const ConfigNode& section) {
  SweepSettings s;
  s.variants = parse_variants(section.get<std::vector<std::string>>("variants",
                                                                   default_variant_names()));
  s.seeds = section.get<std::size_t>("seeds", s.seeds);
  section.require(s.seeds >= 1 && s.seeds <= kMaxSeeds, "seeds",
                  "a number of seeds from 1 to " + std::to_string(kMaxSeeds));
  s.target = section.get<double>("target", s.target);
  section.require(s.target > 0 && s.target <= 1, "target",
                  "a held-out seq_acc in (0, 1] that counts as solved");
  return s;
}

train::Config load_run_config(const SweepPlan& plan, const PlannedRun& run) {
  return train::read_config_tree(load_tree(plan.config_path, run.overrides, nullptr),
                                 stem(plan.config_path));
}

SweepPlan plan_sweep(const SweepRequest& request) {
  SweepSettings settings;
  const ConfigNode root = load_tree(request.config_path, request.sets, &settings);
  train::Config base = train::read_config_tree(root, stem(request.config_path));
  SweepPlan plan;
  plan.config_path = request.config_path;
  plan.name = base.name;
  plan.out_dir = request.out_dir.empty() ? "runs/" + base.name + "-ablation" : request.out_dir;
  plan.variants = request.variants ? parse_variants(*request.variants) : settings.variants;
  const std::size_t seeds = request.seeds.value_or(settings.seeds);
  if (seeds < 1 || seeds > kMaxSeeds)
    throw std::invalid_argument("--seeds: expected 1 to " + std::to_string(kMaxSeeds) +
                                " seeds, found " + std::to_string(seeds));
  for (std::size_t i = 0; i < seeds; ++i) plan.seeds.push_back(base.seed + i);
  plan.target = settings.target;
  plan.steps = base.train.steps;
  plan.eval_samples = base.train.eval_samples;
  for (const Variant& variant : plan.variants)
    for (const std::uint64_t seed : plan.seeds) {
      PlannedRun run;
      run.variant = variant;
      run.seed = seed;
      run.dir = (fs::path(plan.out_dir) / variant.name / ("seed-" + std::to_string(seed))).string();
      run.overrides = run_overrides(request, variant, seed);
      run.config_yaml = resolve_run(plan, run);
      plan.runs.push_back(std::move(run));
    }
  refresh_states(plan);
  return plan;
}

void refresh_states(SweepPlan& plan) {
  for (PlannedRun& run : plan.runs) read_state(run, plan.steps);
}

}  // namespace qkv::ablate
