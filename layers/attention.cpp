// MultiHeadAttention: projection modes, their validation, and the forward pass around the
// fused core::attention op.
#include "layers/attention.hpp"

#include <cmath>
#include <stdexcept>
#include <string>

#include "core/ops.hpp"

namespace qkv::layers {

namespace {

std::string describe(const MultiHeadAttentionOptions& o) {
  return "d_model " + std::to_string(o.d_model) + ", heads " + std::to_string(o.heads) +
         ", wq " + projection_name(o.wq) + ", wk " + projection_name(o.wk) + ", wv " +
         projection_name(o.wv) + ", wo " + (o.wo ? "learned" : "none");
}

[[noreturn]] void reject(const MultiHeadAttentionOptions& o, const std::string& why) {
  throw std::invalid_argument("MultiHeadAttention (" + describe(o) + "): " + why);
}

}  // namespace

const char* projection_name(Projection projection) {
  return projection == Projection::learned ? "learned" : "identity";
}

MultiHeadAttentionOptions MultiHeadAttentionOptions::no_projections(std::size_t d_model,
                                                                    std::size_t heads) {
  MultiHeadAttentionOptions o;
  o.d_model = d_model;
  o.heads = heads;
  o.wq = o.wk = o.wv = Projection::identity;
  o.wo = false;
  return o;
}

AttentionShape attention_shape(const MultiHeadAttentionOptions& options) {
  const std::size_t C = options.d_model;
  const std::size_t H = options.heads;
  if (C == 0 || H == 0) reject(options, "d_model and heads must be positive");
  if (!(options.dropout >= 0.0 && options.dropout < 1.0)) {
    reject(options, "dropout must be in [0, 1), got " + std::to_string(options.dropout));
  }
  const bool q_learned = options.wq == Projection::learned;
  const bool k_learned = options.wk == Projection::learned;
  const bool v_learned = options.wv == Projection::learned;
  const bool split_evenly = C % H == 0;

  AttentionShape shape;
  // Queries and keys need one width per head. Both learned: the usual C/H. Otherwise the
  // identity side is C wide, so the learned side (if any) gives C per head.
  if (q_learned && k_learned) {
    if (!split_evenly) reject(options, "learned wq and wk need d_model divisible by heads");
    shape.qk_dim = C / H;
  } else {
    shape.qk_dim = C;
  }
  if (v_learned) {
    if (!split_evenly) reject(options, "a learned wv needs d_model divisible by heads");
    shape.v_dim = C / H;
  } else {
    shape.v_dim = C;
  }
  shape.one_head_for_all = !q_learned && !k_learned && !v_learned && !options.wo;
  if (!options.wo && !shape.one_head_for_all && H * shape.v_dim != C) {
    reject(options, "without wo the heads side by side are the output, so heads * " +
                        std::to_string(shape.v_dim) +
                        " (value width per head) must equal d_model; use wo: learned, a "
                        "learned wv, or heads: 1");
  }
  return shape;
}

MultiHeadAttention::MultiHeadAttention(const MultiHeadAttentionOptions& options, core::Rng& rng,
                                       core::Rng* dropout_rng)
    : options_(options), shape_(attention_shape(options)), dropout_rng_(dropout_rng) {
  if (options.dropout > 0.0 && dropout_rng == nullptr) {
    reject(options, "dropout > 0 needs a dropout_rng");
  }
  const std::size_t C = options.d_model;
  const std::size_t H = options.heads;
  // Registration order fixes both the parameter order and the order of random draws.
  if (options.wq == Projection::learned) {
    wq_ = register_module("wq", std::make_shared<Linear>(C, H * shape_.qk_dim, rng));
  }
  if (options.wk == Projection::learned) {
    wk_ = register_module("wk", std::make_shared<Linear>(C, H * shape_.qk_dim, rng));
  }
  if (options.wv == Projection::learned) {
    wv_ = register_module("wv", std::make_shared<Linear>(C, H * shape_.v_dim, rng));
  }
  if (options.wo) wo_ = register_module("wo", std::make_shared<Linear>(H * shape_.v_dim, C, rng));
}

Tensor MultiHeadAttention::forward(const Tensor& x, const KeyPadding* key_padding) {
  if (x.dim() != 3 || x.size(2) != options_.d_model) {
    throw std::invalid_argument("MultiHeadAttention: expected input (B, T, " +
                                std::to_string(options_.d_model) + "), got " +
                                core::shape_str(x.shape()));
  }
  // Identity sides are x itself, (B, T, C), which core::attention shares across heads.
  // Three Linears, not one concatenated (B·T)×C by C×3C product: measured at C = 32..128,
  // B·T = 512, forward + backward, the concat of the weights and the three slices of the
  // result cost more than the larger gemm saves (three: 100/345/1090 µs, fused:
  // 255/630/1680 µs).
  Tensor q = wq_ ? wq_->forward(x) : x;  // (B, T, H·Dk) or (B, T, C)
  Tensor k = wk_ ? wk_->forward(x) : x;
  Tensor v = wv_ ? wv_->forward(x) : x;  // (B, T, H·Dv) or (B, T, C)
  const std::size_t H = options_.heads;
  if (hook_q_.active()) q = through_heads(hook_q_, q, wq_ ? H : 1);
  if (hook_k_.active()) k = through_heads(hook_k_, k, wk_ ? H : 1);
  if (hook_v_.active()) v = through_heads(hook_v_, v, wv_ ? H : 1);

  core::AttentionOptions attention;
  attention.heads = shape_.one_head_for_all ? 1 : options_.heads;
  attention.scale = 1.0 / std::sqrt(static_cast<double>(shape_.qk_dim));
  attention.causal = options_.causal;
  attention.q_shared = !wq_;
  attention.k_shared = !wk_;
  attention.v_shared = !wv_;
  attention.dropout = options_.dropout;
  attention.training = is_training();
  attention.rng = dropout_rng_;
  attention.key_padding = key_padding;
  Tensor probabilities;
  if (capturing() || hook_pattern_.active()) attention.probabilities = &probabilities;

  Tensor heads = core::attention(q, k, v, attention);  // (B, T, H·Dv)

  if (attention.probabilities) {
    if (shape_.one_head_for_all && H > 1) {
      // The one computed map stands for every head: (B, 1, T, T) -> (B, H, T, T).
      core::NoGrad no_grad;
      probabilities = core::concat(std::vector<Tensor>(H, probabilities), 1);
    }
    hook_pattern_.apply(probabilities);  // read-only: its readers only
    if (capturing()) keep_attention_map(probabilities);
  }
  if (hook_z_.active()) heads = through_heads(hook_z_, heads, shape_.one_head_for_all ? 1 : H);
  return wo_ ? wo_->forward(heads) : heads;  // (B, T, C)
}

Tensor MultiHeadAttention::through_heads(const HookPoint& point, const Tensor& t, std::size_t h) {
  const core::Shape shape = t.shape();  // (B, T, h·D)
  Tensor view = core::reshape(t, {shape[0], shape[1], h, shape[2] / h});  // shares the values
  point.apply(view);
  return core::reshape(view, shape);
}

HookPoints MultiHeadAttention::hook_points() {
  return {{"hook_q", &hook_q_},
          {"hook_k", &hook_k_},
          {"hook_v", &hook_v_},
          {"hook_pattern", &hook_pattern_},
          {"hook_z", &hook_z_}};
}

HeadWeights MultiHeadAttention::head_weights(std::size_t head) const {
  if (head >= options_.heads) {
    throw std::out_of_range("MultiHeadAttention::head_weights: head " + std::to_string(head) +
                            " out of range (heads " + std::to_string(options_.heads) + ")");
  }
  core::NoGrad no_grad;
  // Head h owns rows [h·D, (h+1)·D) of a per-head projection's weight (H·D, C) and bias.
  auto rows = [head](const Tensor& t, std::size_t width) {
    return core::slice(t.detach(), 0, head * width, (head + 1) * width).clone();
  };
  HeadWeights w;
  if (wq_) {
    w.wq = rows(wq_->weight(), shape_.qk_dim);
    w.bq = rows(wq_->bias(), shape_.qk_dim);
  }
  if (wk_) {
    w.wk = rows(wk_->weight(), shape_.qk_dim);
    w.bk = rows(wk_->bias(), shape_.qk_dim);
  }
  if (wv_) {
    w.wv = rows(wv_->weight(), shape_.v_dim);
    w.bv = rows(wv_->bias(), shape_.v_dim);
  }
  if (wo_) {
    // wo (C, H·Dv) reads head h through columns [h·Dv, (h+1)·Dv).
    w.wo = core::slice(wo_->weight().detach(), 1, head * shape_.v_dim, (head + 1) * shape_.v_dim).clone();
  }
  return w;
}

}  // namespace qkv::layers
