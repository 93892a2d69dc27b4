// GatedFfn: three Linears and the custom silu op, plus the one line that registers it.
#include "gated_ffn.hpp"

#include "core/ops.hpp"
#include "silu.hpp"

namespace example {

using qkv::core::Tensor;
using qkv::layers::Linear;

GatedFfn::GatedFfn(std::size_t dim, std::size_t hidden, qkv::core::Rng& rng) {
  gate_ = register_module("gate", std::make_shared<Linear>(dim, hidden, rng));
  up_ = register_module("up", std::make_shared<Linear>(dim, hidden, rng));
  down_ = register_module("down", std::make_shared<Linear>(hidden, dim, rng));
}

Tensor GatedFfn::forward(const Tensor& x) {
  // (B, T, C) -> (B, T, hidden) twice, gated elementwise, -> (B, T, C)
  return down_->forward(qkv::core::mul(silu(gate_->forward(x)), up_->forward(x)));
}

std::shared_ptr<qkv::layers::Layer> make_gated_ffn(const qkv::ConfigNode& node,
                                                   const qkv::layers::LayerContext& context,
                                                   qkv::core::Rng& rng) {
  const auto hidden = node.get<std::size_t>("hidden", context.d_ff);
  node.require(hidden > 0, "hidden", "a positive width");
  return std::make_shared<GatedFfn>(context.d_model, hidden, rng);
}

// The registration: one line. This file must be linked as an object (see CMakeLists.txt),
// or a static library's linker would drop it, since nothing refers to it by name.
static const qkv::layers::RegisterLayer registration("gated_ffn", make_gated_ffn);

}  // namespace example
