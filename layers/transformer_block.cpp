// TransformerBlock: pre-LN / post-LN residual wiring of attention and ffn.
#include "layers/transformer_block.hpp"

#include <stdexcept>
#include <string>

#include "core/ops.hpp"

namespace qkv::layers {

const char* norm_placement_name(NormPlacement placement) {
  return placement == NormPlacement::pre ? "pre" : "post";
}

TransformerBlock::TransformerBlock(const BlockLayers& layers, const TransformerBlockOptions& options,
                                   core::Rng* dropout_rng)
    : layers_(layers), options_(options), dropout_rng_(dropout_rng) {
  if (!layers.ln1 || !layers.attn) {
    throw std::invalid_argument("TransformerBlock: ln1 and attn are required");
  }
  if (!layers.ln2 != !layers.ffn) {
    throw std::invalid_argument(std::string("TransformerBlock: ln2 and ffn come together; got ") +
                                (layers.ln2 ? "ln2 without ffn" : "ffn without ln2"));
  }
  if (!(options.dropout >= 0.0 && options.dropout < 1.0)) {
    throw std::invalid_argument("TransformerBlock: dropout must be in [0, 1), got " +
                                std::to_string(options.dropout));
  }
  if (options.dropout > 0.0 && dropout_rng == nullptr) {
    throw std::invalid_argument("TransformerBlock: dropout > 0 needs a dropout_rng");
  }
  register_module("ln1", layers.ln1);
  register_module("attn", layers.attn);
  if (layers.ffn) {
    register_module("ln2", layers.ln2);
    register_module("ffn", layers.ffn);
  }
}

Tensor TransformerBlock::residual(const Tensor& branch) {
  if (options_.dropout == 0.0) return branch;
  return core::dropout(branch, options_.dropout, is_training(), *dropout_rng_);
}

Tensor TransformerBlock::forward(const Tensor& x, const KeyPadding* key_padding) {
  const BlockLayers& l = layers_;
  Tensor h = x;  // (B, T, C) throughout
  if (options_.norm_placement == NormPlacement::pre) {
    h = core::add(h, residual(l.attn->forward(l.ln1->forward(h), key_padding)));
    if (l.ffn) h = core::add(h, residual(l.ffn->forward(l.ln2->forward(h))));
  } else {
    h = l.ln1->forward(core::add(h, residual(l.attn->forward(h, key_padding))));
    if (l.ffn) h = l.ln2->forward(core::add(h, residual(l.ffn->forward(h))));
  }
  return h;
}

}  // namespace qkv::layers
