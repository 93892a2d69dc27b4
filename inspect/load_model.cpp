// load_model: checkpoint -> config -> task -> model -> weights.
#include "inspect/load_model.hpp"

#include <algorithm>
#include <stdexcept>

#include "core/random.hpp"
#include "io/checkpoint.hpp"
#include "layers/build_model.hpp"
#include "train/resources.hpp"

namespace qkv::inspect {

namespace {

// The names the checkpoint stored (none before format version 2) must be the ones its
// config's task gives, or the ids would mean other tokens than they did in training.
void check_vocabulary(const std::string& path, const std::vector<std::string>& stored,
                      const std::vector<std::string>& task) {
  if (stored.empty() || stored == task) return;
  std::size_t id = 0;
  while (id < stored.size() && id < task.size() && stored[id] == task[id]) ++id;
  auto name = [id](const std::vector<std::string>& names) {
    return id < names.size() ? "'" + names[id] + "'" : std::string("nothing");
  };
  throw std::runtime_error("checkpoint '" + path + "': its vocabulary (" +
                           std::to_string(stored.size()) + " tokens) differs from its task's (" +
                           std::to_string(task.size()) + ") at id " + std::to_string(id) +
                           ": stored " + name(stored) + ", task " + name(task));
}

}  // namespace

LoadedModel load_model(const std::string& checkpoint_path, const layers::LayerRegistry& registry) {
  const io::Checkpoint checkpoint = io::load_checkpoint(checkpoint_path);
  // The saved config is someone else's: no path in it is opened (parse_checkpoint_config),
  // and its sizes must fit this machine before the model is built.
  LoadedModel loaded{train::parse_checkpoint_config(checkpoint.config_yaml,
                                                    checkpoint_path + " (its config)",
                                                    checkpoint.task_state),
                     nullptr, nullptr, {}, checkpoint.step};
  loaded.task = loaded.config.make_task(checkpoint.task_state);
  // Another machine's choice: more BLAS threads than cores made OpenBLAS hang at exit.
  loaded.config.train.threads = std::min(loaded.config.train.threads, train::available_cores());
  try {
    train::check_memory(train::estimate_memory(loaded.config, loaded.task->vocab_size(),
                                               loaded.task->max_seq_len(), /*training=*/false));
  } catch (const std::runtime_error& error) {
    throw std::runtime_error("checkpoint '" + checkpoint_path + "': " + error.what());
  }
  core::Rng init_rng(loaded.config.seed);  // the weights are replaced by the checkpoint's
  loaded.model = layers::build_model(loaded.config.model, loaded.task->vocab_size(),
                                     loaded.task->max_seq_len(), init_rng, registry);
  try {
    loaded.model->load_state(checkpoint.weights);
  } catch (const std::invalid_argument& error) {
    throw std::runtime_error("checkpoint '" + checkpoint_path + "': " + error.what());
  }
  loaded.model->eval();
  loaded.vocabulary = loaded.task->token_names();
  check_vocabulary(checkpoint_path, checkpoint.vocabulary, loaded.vocabulary);
  return loaded;
}

}  // namespace qkv::inspect
