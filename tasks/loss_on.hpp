// LossOn: which positions of an example count for the loss, and its name in a config
// (`train.loss_on: answer | all`).
//
//   LossOn loss_on = read_loss_on(root.child("train"), "loss_on");  // default answer
//   out.set("loss_on", loss_on_name(loss_on));                      // "answer"
#pragma once

#include <string>
#include <vector>

#include "strict_yaml/config_node.hpp"

namespace qkv::tasks {

// answer: only the answer's positions (after SEP); all: every real (non-padding) position.
enum class LossOn { answer, all };

const char* loss_on_name(LossOn loss_on);  // "answer", "all"
const std::vector<std::string>& loss_on_names();

// The key as a LossOn (default answer); another value is a ConfigError at the key that
// lists the names and suggests the closest.
LossOn read_loss_on(const qkv::ConfigNode& node, const std::string& key);

}  // namespace qkv::tasks
