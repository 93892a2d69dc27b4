// make_optimizer: optimizer type names to constructors (see factory.hpp).
#include "optim/factory.hpp"

#include <stdexcept>

#include "optim/adam.hpp"
#include "optim/sgd.hpp"

namespace qkv::optim {

const std::vector<std::string>& optimizer_types() {
  static const std::vector<std::string> types = {"sgd", "adam", "adamw"};
  return types;
}

namespace {

// An option the chosen type ignores must not be set silently.
void reject_unused(const std::string& type, const char* option, bool changed) {
  if (changed) {
    throw std::invalid_argument("optimizer " + type + " does not use option " + option +
                                " (it applies to " +
                                (type == "sgd" ? "adam and adamw" : "sgd") + " only)");
  }
}

}  // namespace

std::unique_ptr<Optimizer> make_optimizer(const std::string& type,
                                          const std::vector<core::NamedParameter>& params,
                                          const OptimizerOptions& options) {
  const OptimizerOptions defaults;
  std::unique_ptr<Optimizer> optimizer;
  std::vector<ParamGroup> groups = split_decay_groups(params, options.decay_embeddings);
  if (type == "sgd") {
    reject_unused(type, "beta1", options.beta1 != defaults.beta1);
    reject_unused(type, "beta2", options.beta2 != defaults.beta2);
    reject_unused(type, "eps", options.eps != defaults.eps);
    optimizer = std::make_unique<SGD>(
        std::move(groups), SGDOptions{options.lr, options.momentum, options.dampening,
                                      options.weight_decay, options.nesterov});
  } else if (type == "adam" || type == "adamw") {
    reject_unused(type, "momentum", options.momentum != defaults.momentum);
    reject_unused(type, "dampening", options.dampening != defaults.dampening);
    reject_unused(type, "nesterov", options.nesterov != defaults.nesterov);
    if (type == "adam") {
      optimizer = std::make_unique<Adam>(
          std::move(groups), AdamOptions{options.lr, options.beta1, options.beta2, options.eps,
                                         options.weight_decay});
    } else {
      optimizer = std::make_unique<AdamW>(
          std::move(groups), AdamWOptions{options.lr, options.beta1, options.beta2, options.eps,
                                          options.weight_decay});
    }
  } else {
    throw std::invalid_argument("unknown optimizer type '" + type +
                                "' (known types: sgd, adam, adamw)");
  }
  optimizer->set_schedule(Schedule(options.schedule, options.lr));
  return optimizer;
}

}  // namespace qkv::optim
