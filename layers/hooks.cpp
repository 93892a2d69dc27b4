// HookPoint: adding, removing and running the hooks of one named point.
#include "layers/hooks.hpp"

#include <algorithm>
#include <stdexcept>

namespace qkv::layers {

Hook read_hook(std::string name, HookReader read) {
  return Hook{std::move(name), std::move(read), nullptr};
}

Hook replace_hook(std::string name, HookReplacer replace) {
  return Hook{std::move(name), nullptr, std::move(replace)};
}

HookPoint::HookPoint(std::string name, Access access) : name_(std::move(name)), access_(access) {}

HookHandle HookPoint::add(const Hook& hook) {
  if (!hook.read == !hook.replace) {
    throw std::invalid_argument("hook point '" + name_ + "': a hook needs exactly one of a reader " +
                                "and a replacer; got " + (hook.read ? "both" : "neither"));
  }
  if (hook.replace && read_only()) {
    throw std::invalid_argument("hook point '" + name_ +
                                "' is read-only (its value is not on the forward's path): add a "
                                "reader there, or replace a value the forward uses");
  }
  hooks_.push_back(Entry{next_id_, hook.read, hook.replace});
  return HookHandle{this, next_id_++};
}

void HookPoint::remove(const HookHandle& handle) {
  if (handle.point != this) {
    throw std::invalid_argument("hook point '" + name_ + "': the handle belongs to " +
                                (handle.point ? "point '" + handle.point->name() + "'" : "no point"));
  }
  hooks_.erase(std::remove_if(hooks_.begin(), hooks_.end(),
                              [&](const Entry& e) { return e.id == handle.id; }),
               hooks_.end());
}

core::Tensor HookPoint::run(const core::Tensor& value) const {
  core::Tensor current = value;
  for (const Entry& hook : hooks_) {
    if (hook.read) {
      hook.read(current);
      continue;
    }
    core::Tensor replacement = hook.replace(current);
    if (!replacement.defined() || replacement.shape() != current.shape() ||
        replacement.dtype() != current.dtype()) {
      throw std::invalid_argument(
          "hook at '" + name_ + "': the replacement must have the activation's shape " +
          core::shape_str(current.shape()) + " and dtype " + core::dtype_name(current.dtype()) +
          "; got " +
          (replacement.defined() ? core::shape_str(replacement.shape()) + " " +
                                       core::dtype_name(replacement.dtype())
                                 : std::string("an undefined tensor")));
    }
    current = std::move(replacement);
  }
  return current;
}

}  // namespace qkv::layers
