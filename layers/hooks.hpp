// Hook points: named places in a model's forward where a hook may read an activation or
// replace it, as TransformerLens's HookPoint does. The Transformer names its points
// (`blocks.0.attn.hook_z`, the list is in transformer.hpp); inspect/ builds the activation
// cache, head ablation and activation patching on them.
//
// A point with no hook costs one test of an empty vector: no call, no copy, no string
// (a point's name is made once, when the model is built). Hooks run in the order they
// were added; a replacer's result is what the next hook, and the rest of the forward,
// sees. A replacement must have the activation's shape and dtype. A read-only point is one
// whose value is not on the forward's path (the attention pattern inside the fused
// attention op, the positional contribution computed for the reader): adding a replacer
// there is an error. A hook must not add or remove hooks while it runs.
//
//   HookHandle h = model.add_hook(replace_hook("blocks.0.attn.hook_z",
//       [](const Tensor& z) { return core::mul(z, keep_mask); }));   // z (B, T, H, D)
//   model.add_hook(read_hook("blocks.1.hook_resid_pre",
//       [&](const Tensor& x) { seen = x; }));
//   Tensor logits = model.forward(ids);
//   model.remove_hook(h);   // or model.clear_hooks()
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.hpp"

namespace qkv::layers {

// Sees the activation; must not write into it.
using HookReader = std::function<void(const core::Tensor& value)>;
// Returns the activation to use instead (same shape and dtype).
using HookReplacer = std::function<core::Tensor(const core::Tensor& value)>;

// A hook and the name of the point it goes to: exactly one of read and replace is set.
struct Hook {
  std::string name;
  HookReader read;
  HookReplacer replace;
};
Hook read_hook(std::string name, HookReader read);
Hook replace_hook(std::string name, HookReplacer replace);

class HookPoint;

// What add_hook returns, to remove that one hook again.
struct HookHandle {
  HookPoint* point = nullptr;
  std::size_t id = 0;
};

class HookPoint {
 public:
  enum class Access { replaceable, read_only };

  // `name` is the point's local name ("hook_q"); its owner's model gives it the full one.
  explicit HookPoint(std::string name, Access access = Access::replaceable);
  HookPoint(const HookPoint&) = delete;
  HookPoint& operator=(const HookPoint&) = delete;

  const std::string& name() const { return name_; }
  void set_name(std::string name) { name_ = std::move(name); }
  bool read_only() const { return access_ == Access::read_only; }

  // Throws std::invalid_argument for a hook with neither or both functions set, or a
  // replacer at a read-only point (the message names the point).
  HookHandle add(const Hook& hook);
  void remove(const HookHandle& handle);  // a handle of another point: std::invalid_argument
  void clear() { hooks_.clear(); }
  bool active() const { return !hooks_.empty(); }

  // The forward's call: `value` becomes what the hooks make of it.
  void apply(core::Tensor& value) const {
    if (!hooks_.empty()) value = run(value);
  }

 private:
  struct Entry {
    std::size_t id;
    HookReader read;
    HookReplacer replace;
  };
  core::Tensor run(const core::Tensor& value) const;

  std::string name_;
  Access access_;
  std::vector<Entry> hooks_;
  std::size_t next_id_ = 0;
};

// A module's hook points by name relative to it ("attn.hook_q"), in forward order.
using HookPoints = std::vector<std::pair<std::string, HookPoint*>>;

}  // namespace qkv::layers
