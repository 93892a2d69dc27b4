// LossOn: names to values and back.
#include "tasks/loss_on.hpp"

namespace qkv::tasks {

const char* loss_on_name(LossOn loss_on) { return loss_on == LossOn::all ? "all" : "answer"; }

const std::vector<std::string>& loss_on_names() {
  static const std::vector<std::string> names = {"answer", "all"};
  return names;
}

LossOn read_loss_on(const qkv::ConfigNode& node, const std::string& key) {
  const std::string name = node.get_choice(key, loss_on_names(), loss_on_name(LossOn::answer));
  return name == loss_on_name(LossOn::all) ? LossOn::all : LossOn::answer;
}

}  // namespace qkv::tasks
