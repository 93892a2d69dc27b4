// MultiHeadAttention: projection modes, their validation, and the forward pass around the
// fused core::attention op.
#include "layers/attention.hpp"

#include <array>
#include <cmath>
#include <stdexcept>
#include <string>

#include "core/ops.hpp"

namespace qkv::layers {

namespace {

[[noreturn]] void reject(const MultiHeadAttentionOptions& o, const std::string& why) {
  throw std::invalid_argument("MultiHeadAttention (" + describe(o) + "): " + why);
}

bool projected(Projection p) { return p != Projection::identity; }

// The query and key width per head, checking what the qk form needs.
std::size_t qk_width(const MultiHeadAttentionOptions& o) {
  const std::size_t C = o.d_model;
  const bool split_evenly = C % o.heads == 0;
  switch (o.qk) {
    case QkForm::merged:
      if (o.wq != Projection::learned || o.wk != Projection::learned) {
        reject(o, "qk merged replaces wq and wk by one matrix per head; leave them learned");
      }
      if (!split_evenly) reject(o, "qk merged needs d_model divisible by heads (its scale and "
                                   "initialisation are the reference's d_model / heads)");
      return C;  // each head's queries x·W_h are C wide, its keys x
    case QkForm::tied:
      if (!projected(o.wq)) reject(o, "qk tied needs a learned or frozen wq (tied identities are "
                                      "wq identity, wk identity)");
      if (o.wk != o.wq) reject(o, "qk tied makes keys with wq, so wk must equal wq");
      if (!split_evenly) reject(o, "qk tied needs d_model divisible by heads");
      return C / o.heads;
    case QkForm::separate:
      break;
  }
  // Both projected: the usual C/H. Otherwise the identity side is C wide, so the projected
  // side (if any) gives C per head.
  if (projected(o.wq) && projected(o.wk)) {
    if (!split_evenly) reject(o, "wq and wk, learned or frozen, need d_model divisible by heads");
    return C / o.heads;
  }
  return C;
}

}  // namespace

const char* projection_name(Projection projection) {
  switch (projection) {
    case Projection::learned: return "learned";
    case Projection::identity: return "identity";
    case Projection::frozen: return "frozen";
  }
  return "?";
}

const char* qk_form_name(QkForm form) {
  switch (form) {
    case QkForm::separate: return "separate";
    case QkForm::merged: return "merged";
    case QkForm::tied: return "tied";
  }
  return "?";
}

std::string describe(const MultiHeadAttentionOptions& o) {
  return "d_model " + std::to_string(o.d_model) + ", heads " + std::to_string(o.heads) +
         ", wq " + projection_name(o.wq) + ", wk " + projection_name(o.wk) + ", wv " +
         projection_name(o.wv) + ", wo " + (projected(o.wo) ? projection_name(o.wo) : "none") +
         ", qk " + qk_form_name(o.qk);
}

MultiHeadAttentionOptions MultiHeadAttentionOptions::no_projections(std::size_t d_model,
                                                                    std::size_t heads) {
  MultiHeadAttentionOptions o;
  o.d_model = d_model;
  o.heads = heads;
  o.wq = o.wk = o.wv = o.wo = Projection::identity;
  return o;
}

AttentionShape attention_shape(const MultiHeadAttentionOptions& options) {
  const std::size_t C = options.d_model;
  const std::size_t H = options.heads;
  if (C == 0 || H == 0) reject(options, "d_model and heads must be positive");
  if (!(options.dropout >= 0.0 && options.dropout < 1.0)) {
    reject(options, "dropout must be in [0, 1), got " + std::to_string(options.dropout));
  }
  AttentionShape shape;
  shape.qk_dim = qk_width(options);
  shape.scale = 1.0 / std::sqrt(static_cast<double>(
                          options.qk == QkForm::merged ? C / H : shape.qk_dim));
  if (projected(options.wv)) {
    if (C % H != 0) reject(options, "a learned or frozen wv needs d_model divisible by heads");
    shape.v_dim = C / H;
  } else {
    shape.v_dim = C;
  }
  const bool wo = projected(options.wo);
  shape.one_head_for_all = options.qk == QkForm::separate && !projected(options.wq) &&
                           !projected(options.wk) && !projected(options.wv) && !wo;
  if (!wo && !shape.one_head_for_all && H * shape.v_dim != C) {
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
  const std::size_t H = options.heads;
  // Registration order fixes both the parameter order and the order of random draws.
  // merged and tied draw the reference's wq and wk first, so wv and wo start as its own.
  switch (options.qk) {
    case QkForm::separate:
      wq_ = make_projection("wq", options.wq, H * shape_.qk_dim, rng);
      wk_ = make_projection("wk", options.wk, H * shape_.qk_dim, rng);
      break;
    case QkForm::merged:
      wqk_ = register_parameter("wqk", merged_init(rng), ParamKind::weight);
      break;
    case QkForm::tied:
      wq_ = make_projection("wq", options.wq, H * shape_.qk_dim, rng);
      const Linear dropped_wk(options.d_model, H * shape_.qk_dim, rng);  // the reference's
      break;
  }
  wv_ = make_projection("wv", options.wv, H * shape_.v_dim, rng);
  if (projected(options.wo)) {
    wo_ = register_module("wo", std::make_shared<Linear>(H * shape_.v_dim, options.d_model, rng));
    if (options.wo == Projection::frozen) wo_->freeze();
  }
}

std::shared_ptr<Linear> MultiHeadAttention::make_projection(const std::string& name,
                                                            Projection kind, std::size_t out,
                                                            core::Rng& rng) {
  if (!projected(kind)) return nullptr;
  auto linear = register_module(name, std::make_shared<Linear>(options_.d_model, out, rng));
  if (kind == Projection::frozen) linear->freeze();
  return linear;
}

Tensor MultiHeadAttention::merged_init(core::Rng& rng) const {
  const std::size_t C = options_.d_model, H = options_.heads, D = C / H;
  Linear wq(C, C, rng), wk(C, C, rng);  // as the reference draws them, biases included
  core::NoGrad no_grad;
  std::vector<Tensor> heads;
  for (std::size_t h = 0; h < H; ++h) {
    const Tensor q = core::slice(wq.weight(), 0, h * D, (h + 1) * D);  // (D, C)
    const Tensor k = core::slice(wk.weight(), 0, h * D, (h + 1) * D);
    heads.push_back(core::reshape(core::matmul(q, k, /*trans_a=*/true), {1, C, C}));
  }
  return core::concat(heads, 0).detach();  // (H, C, C)
}

std::pair<Tensor, Tensor> MultiHeadAttention::queries_and_keys(const Tensor& x) {
  if (wqk_.defined()) {
    // Head h's queries x·W_h side by side: x (B, T, C) times [W_0 ... W_{H-1}] (C, H·C).
    const std::size_t C = options_.d_model, H = options_.heads;
    const Tensor side_by_side = core::reshape(core::permute(wqk_, {1, 0, 2}), {C, H * C});
    return {core::matmul(x, side_by_side), x};
  }
  Tensor q = wq_ ? wq_->forward(x) : x;  // (B, T, H·Dk) or (B, T, C)
  if (options_.qk == QkForm::tied) return {q, q};
  return {q, wk_ ? wk_->forward(x) : x};
}

bool MultiHeadAttention::stacks_qkv() const {
  return options_.qk == QkForm::separate && wq_ && wk_ && wv_;
}

std::array<Tensor, 3> MultiHeadAttention::projections(const Tensor& x) {
  if (stacks_qkv()) {
    // The hooks see q, k, v as tensors of their own: copies of the stacked product's
    // blocks, so values and gradients are bit for bit those of the hookless forward.
    const Tensor qkv = stacked_qkv(x);
    const std::size_t C = options_.d_model;
    return {core::slice(qkv, 2, 0, C), core::slice(qkv, 2, C, 2 * C),
            core::slice(qkv, 2, 2 * C, 3 * C)};
  }
  auto [q, k] = queries_and_keys(x);      // (B, T, H·Dk) or (B, T, C)
  Tensor v = wv_ ? wv_->forward(x) : x;  // (B, T, H·Dv) or (B, T, C)
  return {q, k, v};
}

Tensor MultiHeadAttention::stacked_qkv(const Tensor& x) const {
  // One (B·T)×C by C×3C product: (B, T, C) -> (B, T, 3C), q, k, v its column blocks.
  return core::linear_stacked(x, {wq_->weight(), wk_->weight(), wv_->weight()},
                              {wq_->bias(), wk_->bias(), wv_->bias()});
}

Tensor MultiHeadAttention::heads_of(const Tensor& x, core::AttentionOptions& attention) {
  const bool hooked = hook_q_.active() || hook_k_.active() || hook_v_.active();
  if (stacks_qkv() && !hooked) return core::attention_packed(stacked_qkv(x), attention);
  // Identity sides are x itself, (B, T, C), which core::attention shares across heads.
  auto [q, k, v] = projections(x);
  const std::size_t H = options_.heads;
  attention.q_shared = q.same(x);
  attention.k_shared = k.same(x);
  attention.v_shared = !wv_;
  if (hook_q_.active()) q = through_heads(hook_q_, q, attention.q_shared ? 1 : H);
  if (hook_k_.active()) k = through_heads(hook_k_, k, attention.k_shared ? 1 : H);
  if (hook_v_.active()) v = through_heads(hook_v_, v, wv_ ? H : 1);
  return core::attention(q, k, v, attention);  // (B, T, H·Dv)
}

Tensor MultiHeadAttention::forward(const Tensor& x, const KeyPadding* key_padding) {
  if (x.dim() != 3 || x.size(2) != options_.d_model) {
    throw std::invalid_argument("MultiHeadAttention: expected input (B, T, " +
                                std::to_string(options_.d_model) + "), got " +
                                core::shape_str(x.shape()));
  }
  const std::size_t H = options_.heads;
  core::AttentionOptions attention;
  attention.heads = shape_.one_head_for_all ? 1 : H;
  attention.scale = shape_.scale;
  attention.causal = options_.causal;
  attention.dropout = options_.dropout;
  attention.training = is_training();
  attention.rng = dropout_rng_;
  attention.key_padding = key_padding;
  Tensor probabilities;
  if (capturing() || hook_pattern_.active()) attention.probabilities = &probabilities;

  Tensor heads = heads_of(x, attention);  // (B, T, H·Dv)

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
  const std::shared_ptr<Linear>& key_side = options_.qk == QkForm::tied ? wq_ : wk_;
  if (key_side) {
    w.wk = rows(key_side->weight(), shape_.qk_dim);
    w.bk = rows(key_side->bias(), shape_.qk_dim);
  }
  if (wqk_.defined()) {
    const std::size_t C = options_.d_model;
    w.wqk = core::reshape(core::slice(wqk_.detach(), 0, head, head + 1), {C, C}).clone();
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
