// Fused multi-head scaled dot-product attention. Heads are never copied out: head h of a
// (B, T, H*D) tensor is the strided matrix starting at column h*D with leading dimension
// H*D, and a shared (identity-projection) operand is the same matrix for every head. Per
// (batch, head) it runs, llm.c style:
//   forward:  S = scale·Q Kᵀ (gemm) → mask → P = softmax(S) → [dropout] → O = P V (gemm)
//   backward: dP = dO Vᵀ, dV += Pᵀ dO, dS = P ⊙ (dP − rowsum(dP ⊙ P)),
//             dQ += scale·dS K, dK += scale·dSᵀ Q      (gemms with beta = 1)
// Only P (B, H, T, S) and the dropout scales are kept for backward; P doubles as the
// attention map handed to inspection. attention_packed reads q, k and v as the column
// blocks of one (B, T, 3·H·D) tensor (linear_stacked's output): the same strided matrices
// with leading dimension 3·H·D, and one gradient buffer written without a zero fill.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "core/blas.hpp"
#include "core/kernel_util.hpp"
#include "core/ops.hpp"
#include "core/parallel.hpp"
#include "core/random.hpp"
#include "core/vector_math.hpp"

namespace qkv::core {

namespace {

struct Layout {
  std::size_t batch = 0, tq = 0, tk = 0, heads = 0, dk = 0, dv = 0;
  std::size_t ldq = 0, ldk = 0, ldv = 0, ldo = 0;  // row strides
  std::size_t q_head = 0, k_head = 0, v_head = 0;  // column offset per head (0 if shared)
};

// The checks of the options that do not depend on how q, k and v are laid out.
void check_masks_and_dropout(const char* op, const Layout& l, const AttentionOptions& o) {
  if (o.key_padding && o.key_padding->size() != l.batch * l.tk)
    detail::arg_error(op, "key_padding has " + std::to_string(o.key_padding->size()) +
                              " entries, expected B*S = " + std::to_string(l.batch * l.tk));
  if (!(o.dropout >= 0.0 && o.dropout < 1.0))
    detail::arg_error(op, "dropout must be in [0, 1), got " + std::to_string(o.dropout));
  if (o.training && o.dropout > 0.0 && !o.rng) detail::arg_error(op, "dropout needs an rng");
}

Layout check_layout(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionOptions& o) {
  const char* op = "attention";
  detail::check_defined(op, q, "q");
  detail::check_defined(op, k, "k");
  detail::check_defined(op, v, "v");
  detail::check_same_dtype(op, q, k);
  detail::check_same_dtype(op, q, v);
  if (o.heads == 0) detail::arg_error(op, "heads must be positive");
  if (q.dim() != 3 || k.dim() != 3) detail::shape_error(op, "q and k must be (B, T, width)", q.shape(), k.shape());
  if (v.dim() != 3) detail::shape_error(op, "v must be (B, S, width)", k.shape(), v.shape());
  Layout l;
  l.heads = o.heads;
  l.batch = q.shape()[0];
  l.tq = q.shape()[1];
  l.tk = k.shape()[1];
  if (k.shape()[0] != l.batch || v.shape()[0] != l.batch || v.shape()[1] != l.tk)
    detail::shape_error(op, "k and v must share batch and length, q the batch", k.shape(), v.shape());
  auto per_head = [&](const Tensor& t, bool shared, const char* name) {
    const std::size_t width = t.shape()[2];
    if (shared) return width;
    if (width % o.heads != 0)
      detail::arg_error(op, std::string(name) + " width " + std::to_string(width) +
                                " is not divisible by " + std::to_string(o.heads) + " heads");
    return width / o.heads;
  };
  l.dk = per_head(q, o.q_shared, "q");
  if (per_head(k, o.k_shared, "k") != l.dk)
    detail::shape_error(op, "q and k head widths differ", q.shape(), k.shape());
  l.dv = per_head(v, o.v_shared, "v");
  l.ldq = q.shape()[2];
  l.ldk = k.shape()[2];
  l.ldv = v.shape()[2];
  l.ldo = l.heads * l.dv;
  l.q_head = o.q_shared ? 0 : l.dk;
  l.k_head = o.k_shared ? 0 : l.dk;
  l.v_head = o.v_shared ? 0 : l.dv;
  if (o.causal && l.tq != l.tk) detail::shape_error(op, "causal attention needs equal lengths", q.shape(), k.shape());
  check_masks_and_dropout(op, l, o);
  return l;
}

// q, k and v the three column blocks of qkv (B, T, 3·H·D), each head D wide.
Layout packed_layout(const Tensor& qkv, const AttentionOptions& o) {
  const char* op = "attention_packed";
  detail::check_defined(op, qkv, "qkv");
  if (o.heads == 0) detail::arg_error(op, "heads must be positive");
  if (o.q_shared || o.k_shared || o.v_shared)
    detail::arg_error(op, "q, k and v are blocks of one tensor, so none can be shared (a *_shared option is set)");
  if (qkv.dim() != 3 || qkv.shape()[2] % (3 * o.heads) != 0)
    detail::arg_error(op, "qkv must be (B, T, 3 * heads * D) for " + std::to_string(o.heads) +
                              " heads, got " + shape_str(qkv.shape()));
  Layout l;
  l.heads = o.heads;
  l.batch = qkv.shape()[0];
  l.tq = l.tk = qkv.shape()[1];
  l.dk = l.dv = qkv.shape()[2] / (3 * o.heads);
  l.ldq = l.ldk = l.ldv = qkv.shape()[2];
  l.ldo = l.heads * l.dv;
  l.q_head = l.k_head = l.v_head = l.dk;
  check_masks_and_dropout(op, l, o);
  return l;
}

// Dropout scales on the probabilities, (B, H, T, S): 0 with probability p, else 1/(1-p).
template <class T> std::vector<T> dropout_scales(std::size_t count, double p, Rng& rng) {
  std::vector<T> keep(count);
  const T scale = static_cast<T>(1.0 / (1.0 - p));
  for (auto& s : keep) s = rng.uniform() < p ? T(0) : scale;
  return keep;
}

// Runs work(b, h) for every (batch, head), spread over the threads. When an operand is
// shared by the heads (an identity side), its gradient is written by every head of a
// batch, so the split is by batch only; otherwise each (batch, head) writes its own
// columns. A split is fixed by the shapes, so results do not depend on timing.
template <class F> void for_each_head(const Layout& l, bool shared, F&& work) {
  const std::size_t macs = l.tq * l.tk * (l.dk + l.dv);  // of one (batch, head)
  const std::size_t per_unit = shared ? l.heads : 1;
  const std::size_t units = shared ? l.batch : l.batch * l.heads;
  const std::size_t min_units = std::max<std::size_t>(1, (std::size_t{1} << 20) / (macs * per_unit + 1));
  parallel_for(units, min_units, [&](std::size_t begin, std::size_t end) {
    for (std::size_t u = begin; u < end; ++u) {
      if (shared) {
        for (std::size_t h = 0; h < l.heads; ++h) work(u, h);
      } else {
        work(u / l.heads, u % l.heads);
      }
    }
  });
}

bool any_shared(const Layout& l) { return !l.q_head || !l.k_head || !l.v_head; }

// Per (batch, head): P = softmax(scale·Q Kᵀ + masks) into probs (B, H, T, S), then
// O = P V (or (P ⊙ keep) V with dropout) into the head's columns of out (B, T, H*Dv).
// pad is the (B, S) key padding or null; keep the dropout scales or null.
template <class T>
void attention_forward(const T* q, const T* k, const T* v, const Layout& l, T scale, bool causal,
                       const std::uint8_t* pad, const T* keep, T* out, T* probs) {
  const std::size_t tq = l.tq, tk = l.tk;
  const T neg_inf = -std::numeric_limits<T>::infinity();
  for_each_head(l, false, [&](std::size_t b, std::size_t h) {
    const std::uint8_t* pad_b = pad ? pad + b * tk : nullptr;
    const T* qbh = q + b * tq * l.ldq + h * l.q_head;  // (T, Dk), row stride ldq
    const T* kbh = k + b * tk * l.ldk + h * l.k_head;  // (S, Dk), row stride ldk
    const T* vbh = v + b * tk * l.ldv + h * l.v_head;  // (S, Dv), row stride ldv
    T* p = probs + (b * l.heads + h) * tq * tk;       // (T, S)
    gemm(false, true, tq, tk, l.dk, scale, qbh, l.ldq, kbh, l.ldk, T(0), p, tk);
    for (std::size_t i = 0; i < tq; ++i) {
      T* row = p + i * tk;
      if (causal)
        for (std::size_t j = i + 1; j < tk; ++j) row[j] = neg_inf;
      if (pad_b)
        for (std::size_t j = 0; j < tk; ++j)
          if (pad_b[j]) row[j] = neg_inf;
      detail::softmax_row(row, row, tk);  // a row with every key masked: all zeros
    }
    const T* weights = p;
    if (keep) {  // P ⊙ keep of this head, (T, S)
      const T* ks = keep + (b * l.heads + h) * tq * tk;
      T* dropped = detail::thread_scratch<T>(0, tq * tk);
      for (std::size_t i = 0; i < tq * tk; ++i) dropped[i] = p[i] * ks[i];
      weights = dropped;
    }
    gemm(false, false, tq, l.dv, tk, T(1), weights, tk, vbh, l.ldv, T(0), out + b * tq * l.ldo + h * l.dv,
         l.ldo);  // (T, Dv) into the head's columns
  });
}

// The backward of attention_forward, per (batch, head), from dO (B, T, H*Dv) and the
// saved probs: dV += (P ⊙ keep)ᵀ dO; dP = dO Vᵀ (⊙ keep); dS = P ⊙ (dP − rowsum(dP ⊙ P));
// dQ += scale·dS K; dK += scale·dSᵀ Q. dq, dk, dv may be null (not wanted). With beta 0
// they are written, not added to: only for unshared operands in separate buffers (or
// blocks), where each (batch, head) writes its own part once.
template <class T>
void attention_backward(const T* dout, const T* q, const T* k, const T* v, const T* probs,
                        const T* keep, const Layout& l, T scale, T beta, T* dq, T* dk, T* dv) {
  const std::size_t tq = l.tq, tk = l.tk;
  for_each_head(l, any_shared(l), [&](std::size_t b, std::size_t h) {
    const std::size_t qo = b * tq * l.ldq + h * l.q_head;
    const std::size_t ko = b * tk * l.ldk + h * l.k_head;
    const std::size_t vo = b * tk * l.ldv + h * l.v_head;
    const T* gbh = dout + b * tq * l.ldo + h * l.dv;  // (T, Dv), row stride ldo
    const T* p = probs + (b * l.heads + h) * tq * tk;
    const T* ks = keep ? keep + (b * l.heads + h) * tq * tk : nullptr;
    const T* used = p;
    if (ks) {  // P ⊙ keep, (T, S)
      T* weights = detail::thread_scratch<T>(1, tq * tk);
      for (std::size_t i = 0; i < tq * tk; ++i) weights[i] = p[i] * ks[i];
      used = weights;
    }
    if (dv)  // dV += Pᵀ dO
      gemm(true, false, tk, l.dv, tq, T(1), used, tk, gbh, l.ldo, beta, dv + vo, l.ldv);
    if (!dq && !dk) return;
    T* ds = detail::thread_scratch<T>(0, tq * tk);  // dP then dS, (T, S)
    gemm(false, true, tq, tk, l.dv, T(1), gbh, l.ldo, v + vo, l.ldv, T(0), ds, tk);
    for (std::size_t i = 0; i < tq; ++i) {  // dS = P ⊙ (dP − rowsum(dP ⊙ P)), in place
      T* row = ds + i * tk;
      const T* prow = p + i * tk;
      if (ks)
        for (std::size_t j = 0; j < tk; ++j) row[j] *= ks[i * tk + j];
      T dot = 0;
#pragma omp simd reduction(+ : dot)
      for (std::size_t j = 0; j < tk; ++j) dot += row[j] * prow[j];
      for (std::size_t j = 0; j < tk; ++j) row[j] = prow[j] * (row[j] - dot);
    }
    if (dq) gemm(false, false, tq, l.dk, tk, scale, ds, tk, k + ko, l.ldk, beta, dq + qo, l.ldq);
    if (dk) gemm(true, false, tk, l.dk, tq, scale, ds, tk, q + qo, l.ldq, beta, dk + ko, l.ldk);
  });
}

// The saved state of one attention call: the probabilities (B, H, T, S) and the dropout
// scales (empty without dropout).
template <class T> struct Saved {
  Tensor probs;
  std::vector<T> keep;
};

// The forward into a new (B, T, H·Dv) output; q, k, v point at head 0 of each operand.
template <class T>
Tensor forward_all(const T* q, const T* k, const T* v, DType dtype, const AttentionOptions& o,
                   const Layout& l, Saved<T>& saved) {
  Tensor out = Tensor::empty({l.batch, l.tq, l.ldo}, dtype);
  saved.probs = Tensor::empty({l.batch, l.heads, l.tq, l.tk}, dtype);
  if (o.training && o.dropout > 0.0) saved.keep = dropout_scales<T>(saved.probs.numel(), o.dropout, *o.rng);
  attention_forward(q, k, v, l, static_cast<T>(o.scale), o.causal,
                    o.key_padding ? o.key_padding->data() : nullptr,
                    saved.keep.empty() ? nullptr : saved.keep.data(), out.data<T>(),
                    saved.probs.template data<T>());
  if (o.probabilities) *o.probabilities = saved.probs.detach();
  return out;
}

template <class T>
Tensor attention_impl(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionOptions& o,
                      const Layout& l) {
  Saved<T> saved;
  Tensor out = forward_all(q.data<T>(), k.data<T>(), v.data<T>(), q.dtype(), o, l, saved);
  const T scale = static_cast<T>(o.scale);
  record(out, "attention", {q, k, v},
         [l, scale, saved = std::move(saved)](const Tensor& g, const Inputs& in) {
           const Tensor& q = in[0];
           const Tensor& k = in[1];
           const Tensor& v = in[2];
           T* gq = q.requires_grad() ? q.grad_buffer<T>() : nullptr;
           T* gk = k.requires_grad() ? k.grad_buffer<T>() : nullptr;
           T* gv = v.requires_grad() ? v.grad_buffer<T>() : nullptr;
           attention_backward(g.data<T>(), q.data<T>(), k.data<T>(), v.data<T>(),
                              saved.probs.template data<T>(),
                              saved.keep.empty() ? nullptr : saved.keep.data(), l, scale, T(1),
                              gq, gk, gv);
         });
  return out;
}

template <class T>
Tensor attention_packed_impl(const Tensor& qkv, const AttentionOptions& o, const Layout& l) {
  const T* q = qkv.data<T>();  // k and v start l.dk·H and 2·l.dk·H columns later
  const std::size_t width = l.heads * l.dk;
  Saved<T> saved;
  Tensor out = forward_all(q, q + width, q + 2 * width, qkv.dtype(), o, l, saved);
  const T scale = static_cast<T>(o.scale);
  record(out, "attention_packed", {qkv},
         [l, scale, width, saved = std::move(saved)](const Tensor& g, const Inputs& in) {
           const T* q = in[0].data<T>();
           // Every element of the gradient belongs to one (batch, head) block of q, k or v,
           // written once: a fresh buffer needs no zero fill (beta 0).
           const GradTarget<T> gqkv = grad_for_write<T>(in[0]);
           T* gq = gqkv.data;
           attention_backward(g.data<T>(), q, q + width, q + 2 * width,
                              saved.probs.template data<T>(),
                              saved.keep.empty() ? nullptr : saved.keep.data(), l, scale,
                              gqkv.fresh ? T(0) : T(1), gq, gq + width, gq + 2 * width);
         });
  return out;
}

}  // namespace

Tensor attention(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionOptions& options) {
  const Layout l = check_layout(q, k, v, options);
  return dispatch(q.dtype(), [&](auto tag) { return attention_impl<decltype(tag)>(q, k, v, options, l); });
}

Tensor attention_packed(const Tensor& qkv, const AttentionOptions& options) {
  const Layout l = packed_layout(qkv, options);
  return dispatch(qkv.dtype(), [&](auto tag) {
    return attention_packed_impl<decltype(tag)>(qkv, options, l);
  });
}

}  // namespace qkv::core
