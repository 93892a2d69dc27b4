// TransformerBlock: pre-LN / post-LN residual wiring of attention and ffn.
#include "layers/transformer_block.hpp"

#include <stdexcept>
#include <string>

#include "core/ops.hpp"
#include "layers/attention.hpp"

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
  hook_resid_pre_.apply(h);
  if (options_.norm_placement == NormPlacement::pre) {
    Tensor normalized = l.ln1->forward(h);
    hook_ln1_.apply(normalized);
    Tensor attn_out = l.attn->forward(normalized, key_padding);
    hook_attn_out_.apply(attn_out);
    h = core::add(h, residual(attn_out));
    if (l.ffn) {
      hook_resid_mid_.apply(h);
      Tensor ffn_in = l.ln2->forward(h);
      hook_ln2_.apply(ffn_in);
      Tensor mlp_out = l.ffn->forward(ffn_in);
      hook_mlp_out_.apply(mlp_out);
      h = core::add(h, residual(mlp_out));
    }
  } else {
    Tensor attn_out = l.attn->forward(h, key_padding);
    hook_attn_out_.apply(attn_out);
    h = l.ln1->forward(core::add(h, residual(attn_out)));
    if (l.ffn) {
      hook_resid_mid_.apply(h);
      Tensor mlp_out = l.ffn->forward(h);
      hook_mlp_out_.apply(mlp_out);
      h = l.ln2->forward(core::add(h, residual(mlp_out)));
    }
  }
  hook_resid_post_.apply(h);
  return h;
}

HookPoints TransformerBlock::hook_points() {
  const bool pre = options_.norm_placement == NormPlacement::pre;
  HookPoints points{{"hook_resid_pre", &hook_resid_pre_}};
  if (pre) points.emplace_back("ln1.hook_normalized", &hook_ln1_);
  // A user's attention layer has no inner points; the block's own work around it.
  if (auto* attention = dynamic_cast<MultiHeadAttention*>(layers_.attn.get())) {
    for (const auto& [name, point] : attention->hook_points()) points.emplace_back("attn." + name, point);
  }
  points.emplace_back("hook_attn_out", &hook_attn_out_);
  if (layers_.ffn) {
    points.emplace_back("hook_resid_mid", &hook_resid_mid_);
    if (pre) points.emplace_back("ln2.hook_normalized", &hook_ln2_);
    points.emplace_back("hook_mlp_out", &hook_mlp_out_);
  }
  points.emplace_back("hook_resid_post", &hook_resid_post_);
  return points;
}

}  // namespace qkv::layers
