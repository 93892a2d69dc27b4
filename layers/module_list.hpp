// ModuleList: children named by their index ("0", "1", ...), like torch.nn.ModuleList,
// so a stack of blocks is named `blocks.0.attn.wq.weight`, `blocks.1...`.
//
//   auto blocks = register_module("blocks", std::make_shared<ModuleList>());
//   auto first = blocks->append(std::make_shared<TransformerBlock>(layers, options));
#pragma once

#include <memory>
#include <string>

#include "layers/module.hpp"

namespace qkv::layers {

class ModuleList : public Module {
 public:
  template <class M>
  std::shared_ptr<M> append(std::shared_ptr<M> module) {
    return register_module(std::to_string(children().size()), std::move(module));
  }
  std::size_t size() const { return children().size(); }
};

}  // namespace qkv::layers
