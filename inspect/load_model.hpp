// load_model: a checkpoint back as the model, task and vocabulary it was trained with, in
// one call. It does what `qkv eval` needs before it evaluates: read and check the file,
// parse the config saved in it, rebuild the task (the file task with its saved
// vocabulary), build the model through the layer registry (so a program that registered
// its own layers loads their checkpoints too) and load its weights. The optimizer state is
// left in the file: this is for looking at a model, not for training it further (the
// trainer's --resume does that).
//
//   LoadedModel m = load_model("runs/copy/best.safetensors");
//   std::vector<tasks::Token> ids = m.task->encode("a c f b SEP");
//   ActivationCache cache = run_with_cache(*m.model, core::Ids{{1, ids.size()}, ids});
//   std::printf("step %zu, vocab %s..\n", m.step, m.vocabulary[2].c_str());
//
// A checkpoint is someone else's file: no path in its saved config is opened (a file
// task's eval examples come from the checkpoint itself, see tasks/file.hpp), and the model
// it describes must fit in the memory available before it is built (train/resources.hpp).
//
// Every error is one line naming the file: not a checkpoint, truncated or corrupt (from
// io::load_checkpoint), a config that no longer reads (a ConfigError naming the key; an
// unregistered layer type names the known ones), a tensor missing, unknown or of another
// shape than the model's (std::runtime_error naming the tensor and both shapes), a stored
// vocabulary that is not the task's (naming the first id that differs).
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "layers/registry.hpp"
#include "layers/transformer.hpp"
#include "tasks/task.hpp"
#include "train/config.hpp"

namespace qkv::inspect {

struct LoadedModel {
  train::Config config;                        // the run's resolved config, as saved (its
                                               // train.threads capped at this machine's cores)
  std::unique_ptr<tasks::Task> task;           // the task it describes
  std::shared_ptr<layers::Transformer> model;  // the checkpoint's weights, in eval mode
  std::vector<std::string> vocabulary;         // id -> token name (task->token_names(),
                                               // which the checkpoint's stored one matches)
  std::size_t step = 0;                        // training steps the checkpoint had done
};

LoadedModel load_model(const std::string& checkpoint_path,
                       const layers::LayerRegistry& registry = layers::layer_registry());

}  // namespace qkv::inspect
