// run_with_cache / run_with_hooks: hooks set for one forward in evaluation mode, and
// taken off again however the forward ends.
#include "inspect/activation_cache.hpp"

#include <stdexcept>

#include "strict_yaml/closest_match.hpp"

namespace qkv::inspect {

namespace {

// Evaluation mode, no graph and `hooks` while alive; the mode and hooks as they were after.
class HookedRun {
 public:
  HookedRun(layers::Transformer& model, const std::vector<layers::Hook>& hooks)
      : model_(model), was_training_(model.is_training()) {
    model_.eval();
    try {
      for (const layers::Hook& hook : hooks) add(hook);
    } catch (...) {
      restore();
      throw;
    }
  }
  ~HookedRun() { restore(); }
  HookedRun(const HookedRun&) = delete;
  HookedRun& operator=(const HookedRun&) = delete;

  void add(const layers::Hook& hook) { handles_.push_back(model_.add_hook(hook)); }

 private:
  void restore() {
    for (const layers::HookHandle& handle : handles_) model_.remove_hook(handle);
    handles_.clear();
    model_.train(was_training_);
  }

  layers::Transformer& model_;
  bool was_training_;
  core::NoGrad no_grad_;
  std::vector<layers::HookHandle> handles_;
};

}  // namespace

const core::Tensor& ActivationCache::at(const std::string& name) const {
  const auto found = values_.find(name);
  if (found != values_.end()) return found->second;
  const std::string suggestion = closest_match(name, names_);
  throw std::out_of_range("activation cache: no value at '" + name + "'" +
                          (suggestion.empty() ? std::string() : " (did you mean '" + suggestion + "'?)") +
                          "; names() lists the " + std::to_string(names_.size()) + " it holds");
}

void ActivationCache::set(const std::string& name, const core::Tensor& value) {
  if (values_.count(name) == 0) names_.push_back(name);
  values_[name] = value;
}

ActivationCache run_with_cache(layers::Transformer& model, const core::Ids& tokens,
                               const std::vector<layers::Hook>& hooks,
                               const layers::KeyPadding* key_padding) {
  ActivationCache cache;
  HookedRun run(model, hooks);
  for (const std::string& name : model.hook_names()) {
    run.add(layers::read_hook(name, [&cache, &name](const core::Tensor& value) { cache.set(name, value); }));
  }
  model.forward(tokens, key_padding);
  return cache;
}

core::Tensor run_with_hooks(layers::Transformer& model, const core::Ids& tokens,
                            const std::vector<layers::Hook>& hooks,
                            const layers::KeyPadding* key_padding) {
  HookedRun run(model, hooks);
  return model.forward(tokens, key_padding);
}

}  // namespace qkv::inspect
