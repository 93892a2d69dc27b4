// TransformerBlock: pre-LN / post-LN residual wiring of attention and ffn.
#include "layers/transformer_block.hpp"

#include <stdexcept>
#include <string>

#include "core/ops.hpp"

namespace qkv::layers {

LayerBuilder feed_forward_builder(const FeedForwardOptions& options) {
  return [options](core::Rng& init_rng, core::Rng*) -> std::shared_ptr<Layer> {
    return std::make_shared<FeedForward>(options, init_rng);
  };
}

TransformerBlock::TransformerBlock(const TransformerBlockOptions& options, core::Rng& rng)
    : options_(options) {
  if (!(options.dropout >= 0.0 && options.dropout < 1.0)) {
    throw std::invalid_argument("TransformerBlock: dropout must be in [0, 1), got " +
                                std::to_string(options.dropout));
  }
  if (options.dropout > 0.0 && options.dropout_rng == nullptr) {
    throw std::invalid_argument("TransformerBlock: dropout > 0 needs a dropout_rng");
  }
  const std::size_t C = options.attention.d_model;
  ln1_ = register_module("ln1", std::make_shared<LayerNorm>(C));
  attn_ = register_module("attn", std::make_shared<MultiHeadAttention>(options.attention, rng));
  if (options.ffn) {
    ln2_ = register_module("ln2", std::make_shared<LayerNorm>(C));
    std::shared_ptr<Layer> ffn = options.ffn(rng, options.dropout_rng);
    if (!ffn) throw std::invalid_argument("TransformerBlock: the ffn builder returned null");
    ffn_ = register_module("ffn", ffn);
  }
}

Tensor TransformerBlock::residual(const Tensor& branch) {
  if (options_.dropout == 0.0) return branch;
  return core::dropout(branch, options_.dropout, is_training(), *options_.dropout_rng);
}

Tensor TransformerBlock::forward(const Tensor& x, const std::vector<std::uint8_t>* key_padding) {
  Tensor h = x;  // (B, T, C) throughout
  if (options_.norm == NormPlacement::pre) {
    h = core::add(h, residual(attn_->forward(ln1_->forward(h), key_padding)));
    if (ffn_) h = core::add(h, residual(ffn_->forward(ln2_->forward(h))));
  } else {
    h = ln1_->forward(core::add(h, residual(attn_->forward(h, key_padding))));
    if (ffn_) h = ln2_->forward(core::add(h, residual(ffn_->forward(h))));
  }
  return h;
}

}  // namespace qkv::layers
