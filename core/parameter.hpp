// NamedParameter: a trainable tensor with its dotted name and what kind of weight it is.
//
// The name (`blocks.0.attn.wq.weight`) is public API: checkpoints and optimizer state are
// keyed by it. The kind lets optimizers apply the usual convention (weight decay on the
// matrices of linear maps only, not on biases, norm gains or embeddings, unless a config
// says otherwise) without guessing from names.
#pragma once

#include <string>

#include "core/tensor.hpp"

namespace qkv::core {

enum class ParamKind { weight, bias, norm, embedding };

struct NamedParameter {
  std::string name;
  Tensor tensor;
  ParamKind kind = ParamKind::weight;
};

}  // namespace qkv::core
