// make_optimizer: optimizer type names to constructors (see factory.hpp).
#include "optim/factory.hpp"

#include "optim/adam.hpp"
#include "optim/sgd.hpp"

namespace qkv::optim {

std::unique_ptr<Optimizer> make_optimizer(const OptimizerOptions& options,
                                          const std::vector<core::NamedParameter>& params) {
  check_optimizer_options(options);  // an unknown type fails here, before grouping
  std::vector<ParamGroup> groups = split_decay_groups(params, options.decay_embeddings);
  if (options.type == "sgd") return std::make_unique<SGD>(std::move(groups), options);
  if (options.type == "adam") return std::make_unique<Adam>(std::move(groups), options);
  return std::make_unique<AdamW>(std::move(groups), options);  // the one type left
}

}  // namespace qkv::optim
