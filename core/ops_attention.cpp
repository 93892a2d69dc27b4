// Fused multi-head scaled dot-product attention. Heads are never copied out: head h of a
// (B, T, H*D) tensor is the strided matrix starting at column h*D with leading dimension
// H*D, and a shared (identity-projection) operand is the same matrix for every head. Per
// (batch, head) it runs, llm.c style:
//   forward:  S = scale·Q Kᵀ (gemm) → mask → P = softmax(S) → [dropout] → O = P V (gemm)
//   backward: dP = dO Vᵀ, dV += Pᵀ dO, dS = P ⊙ (dP − rowsum(dP ⊙ P)),
//             dQ += scale·dS K, dK += scale·dSᵀ Q      (gemms with beta = 1)
// Causal heads run in blocks of about 32 query rows, each block's products over only the
// keys it can see (Cut below): of each T×T product, 2 blocks skip a quarter, 4 blocks 3/8
// (of the masked half). The masked probabilities are written as exact zeros. Only P
// (B, H, T, S) and the dropout scales are kept for backward; P doubles as the attention map
// handed to inspection. attention_packed reads q, k and v as the column blocks of one
// (B, T, 3·H·D) tensor (linear_stacked's output): the same strided matrices with leading
// dimension 3·H·D, and one gradient buffer written without a zero fill.
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

// Rows per block of causal attention (about; T / kCausalRows blocks), and the key count from
// which K and V are transposed so that Q Kᵀ and dO Vᵀ run as plain products. Measured by
// forward + backward at d_head 32, 1 thread: against the whole-rectangle products, 2 blocks
// of T = 65 were 1.2x faster and 4 of T = 129 1.2-1.3x; smaller blocks lost the FLOPs they
// saved to OpenBLAS's per-call cost. OpenBLAS's small-matrix kernel for A·Bᵀ at these shapes
// is about 2x slower per FLOP than for A·B, which outweighs a copy of K (S, Dk) from
// S = 32 on; at T = 17 the copy costs more than it saves.
constexpr std::size_t kCausalRows = 32;
constexpr std::size_t kTransposeFrom = 32;

// How one head is cut into blocks of query rows. Causal: block i, rows [row(i), row(i+1)),
// sees keys [0, row(i+1)) only, so its products skip the masked keys beyond the block's
// diagonal part; in backward the same cut serves as key blocks, keys [row(i), row(i+1))
// being seen by queries [row(i), T) only. Otherwise one block of every query and key.
struct Cut {
  std::size_t tq, tk, blocks;
  bool causal;
  std::size_t row(std::size_t i) const { return tq * i / blocks; }
  std::size_t keys(std::size_t i) const { return causal ? row(i + 1) : tk; }         // seen by block i
  std::size_t key_begin(std::size_t i) const { return causal ? row(i) : 0; }        // key block i
  std::size_t first_query(std::size_t i) const { return causal ? row(i) : 0; }      // to see key block i
  std::size_t visible(std::size_t r) const { return causal ? r + 1 : tk; }          // keys of row r
};

Cut cut_of(const Layout& l, bool causal) {
  return {l.tq, l.tk, causal ? std::max<std::size_t>(1, l.tq / kCausalRows) : 1, causal};
}

// The softmax runs over whole SIMD batches of a row (up to its end): the extra masked keys
// are -inf, so exact zeros, and cost less than the scalar tail they replace.
constexpr std::size_t kSoftmaxLanes = 16;

// Row r of the scores into probabilities over its visible keys [0, n) (key padding too),
// the masked rest of the row, up to tk, written as exact zeros: P is the attention map too.
template <class T> void softmax_prefix(T* row, std::size_t n, std::size_t tk, const std::uint8_t* pad) {
  const T neg_inf = -std::numeric_limits<T>::infinity();
  const std::size_t whole = std::min(tk, (n + kSoftmaxLanes - 1) / kSoftmaxLanes * kSoftmaxLanes);
  if (pad)
    for (std::size_t j = 0; j < n; ++j)
      if (pad[j]) row[j] = neg_inf;
  std::fill(row + n, row + whole, neg_inf);
  detail::softmax_row(row, row, whole);  // a row with every key masked: all zeros
  std::fill(row + whole, row + tk, T(0));
}

// Head (b, h): Q (T, Dk), K (S, Dk), V (S, Dv) at their row strides, and the element
// offsets of its operands, of its output (or output-gradient) columns (T, Dv) at row stride
// ldo, and of its (T, S) of probs.
template <class T> struct Head {
  const T *q, *k, *v;
  std::size_t qo, ko, vo, oo, po;
};
template <class T>
Head<T> head_of(const T* q, const T* k, const T* v, const Layout& l, std::size_t b, std::size_t h) {
  Head<T> x;
  x.qo = b * l.tq * l.ldq + h * l.q_head;
  x.ko = b * l.tk * l.ldk + h * l.k_head;
  x.vo = b * l.tk * l.ldv + h * l.v_head;
  x.oo = b * l.tq * l.ldo + h * l.dv;
  x.po = (b * l.heads + h) * l.tq * l.tk;
  x.q = q + x.qo;
  x.k = k + x.ko;
  x.v = v + x.vo;
  return x;
}

// P ⊙ keep over block i's rows and visible keys into w (T, S).
template <class T> void drop_block(const T* p, const T* ks, const Cut& c, std::size_t i, T* w) {
  for (std::size_t r = c.row(i); r < c.row(i + 1); ++r)
    for (std::size_t j = 0; j < c.keys(i); ++j) w[r * c.tk + j] = p[r * c.tk + j] * ks[r * c.tk + j];
}

// The (n, d) matrix a (row stride lda) transposed into this thread's scratch `slot` (d, n),
// or null when n is below kTransposeFrom (the products then take a with a BLAS flag).
template <class T> const T* transposed(const T* a, std::size_t lda, std::size_t n, std::size_t d, std::size_t slot) {
  if (n < kTransposeFrom) return nullptr;
  T* t = detail::thread_scratch<T>(slot, n * d);
  for (std::size_t c = 0; c < d; ++c)
    for (std::size_t j = 0; j < n; ++j) t[c * n + j] = a[j * lda + c];
  return t;
}

// C (m, n) = alpha · A Bᵀ with B (n, k) at row stride ldb, or with its transpose bt (k, n) at
// row stride ldbt when that is not null (the same product as a plain one).
template <class T>
void gemm_bt(std::size_t m, std::size_t n, std::size_t k, T alpha, const T* a, std::size_t lda, const T* b,
             std::size_t ldb, const T* bt, std::size_t ldbt, T* c, std::size_t ldc) {
  if (bt) gemm(false, false, m, n, k, alpha, a, lda, bt, ldbt, T(0), c, ldc);
  else gemm(false, true, m, n, k, alpha, a, lda, b, ldb, T(0), c, ldc);
}

// Per (batch, head), block by block: P = softmax(scale·Q Kᵀ + masks) into probs (B, H, T, S)
// (the masked keys exact zeros), then O = P V (or (P ⊙ keep) V with dropout) into the
// head's columns of out (B, T, H*Dv). pad is the (B, S) key padding or null; keep the
// dropout scales or null.
template <class T>
void attention_forward(const T* q, const T* k, const T* v, const Layout& l, T scale, bool causal,
                       const std::uint8_t* pad, const T* keep, T* out, T* probs) {
  const Cut c = cut_of(l, causal);
  const std::size_t tk = l.tk;
  for_each_head(l, false, [&](std::size_t b, std::size_t h) {
    const Head<T> x = head_of(q, k, v, l, b, h);
    const std::uint8_t* pad_b = pad ? pad + b * tk : nullptr;
    T* p = probs + x.po;
    T* w = keep ? detail::thread_scratch<T>(0, l.tq * tk) : p;  // P ⊙ keep, (T, S)
    const T* kt = transposed(x.k, l.ldk, tk, l.dk, 2);  // Kᵀ (Dk, S)
    for (std::size_t i = 0; i < c.blocks; ++i) {
      const std::size_t r0 = c.row(i), rows = c.row(i + 1) - r0, n = c.keys(i);
      gemm_bt(rows, n, l.dk, scale, x.q + r0 * l.ldq, l.ldq, x.k, l.ldk, kt, tk, p + r0 * tk, tk);
      for (std::size_t r = r0; r < r0 + rows; ++r) softmax_prefix(p + r * tk, c.visible(r), tk, pad_b);
      if (keep) drop_block(p, keep + x.po, c, i, w);
      gemm(false, false, rows, l.dv, n, T(1), w + r0 * tk, tk, x.v, l.ldv, T(0), out + x.oo + r0 * l.ldo, l.ldo);
    }
  });
}

// dS = P ⊙ (dP − rowsum(dP ⊙ P)) in place over a row's n entries (dP ⊙ keep first): the
// block's keys, all of them, since P is exactly 0 at the masked ones and so then is dS, and
// whole rows vectorize where each row's own visible length would leave scalar tails.
template <class T> void softmax_backward_row(T* row, const T* prow, const T* krow, std::size_t n) {
  if (krow)
    for (std::size_t j = 0; j < n; ++j) row[j] *= krow[j];
  T dot = 0;
#pragma omp simd reduction(+ : dot)
  for (std::size_t j = 0; j < n; ++j) dot += row[j] * prow[j];
  for (std::size_t j = 0; j < n; ++j) row[j] = prow[j] * (row[j] - dot);
}

// grad (of key block i of K or V, (rows, width) at row stride ldg) = alpha · Wᵀ A over the
// queries that see the block: W (T, S) the weights, A (T, width) at row stride lda.
template <class T>
void key_block_grad(const Cut& c, std::size_t i, std::size_t width, T alpha, const T* w, const T* a,
                    std::size_t lda, T beta, T* grad, std::size_t ldg) {
  const std::size_t k0 = c.key_begin(i), from = c.first_query(i);
  gemm(true, false, c.keys(i) - k0, width, c.tq - from, alpha, w + from * c.tk + k0, c.tk, a + from * lda, lda,
       beta, grad + k0 * ldg, ldg);
}

// The backward of attention_forward, per (batch, head), from dO (B, T, H*Dv) and the
// saved probs, block by block: dV += (P ⊙ keep)ᵀ dO; dP = dO Vᵀ (⊙ keep);
// dS = P ⊙ (dP − rowsum(dP ⊙ P)); dQ += scale·dS K; dK += scale·dSᵀ Q. dq, dk, dv may be
// null (not wanted). With beta 0 they are written, not added to: only for unshared operands
// in separate buffers (or blocks), where each (batch, head) writes its own part once.
template <class T>
void attention_backward(const T* dout, const T* q, const T* k, const T* v, const T* probs,
                        const T* keep, const Layout& l, bool causal, T scale, T beta, T* dq, T* dk, T* dv) {
  const Cut c = cut_of(l, causal);
  const std::size_t tk = l.tk;
  for_each_head(l, any_shared(l), [&](std::size_t b, std::size_t h) {
    const Head<T> x = head_of(q, k, v, l, b, h);
    const T* g = dout + x.oo;  // dO (T, Dv), row stride ldo
    const T* p = probs + x.po;
    const T* ks = keep ? keep + x.po : nullptr;
    const T* w = p;  // P ⊙ keep, (T, S)
    if (ks) {
      T* dropped = detail::thread_scratch<T>(1, l.tq * tk);
      for (std::size_t i = 0; i < c.blocks; ++i) drop_block(p, ks, c, i, dropped);
      w = dropped;
    }
    if (dv)
      for (std::size_t i = 0; i < c.blocks; ++i) key_block_grad(c, i, l.dv, T(1), w, g, l.ldo, beta, dv + x.vo, l.ldv);
    if (!dq && !dk) return;
    T* ds = detail::thread_scratch<T>(0, l.tq * tk);  // dP then dS, (T, S)
    const T* vt = transposed(x.v, l.ldv, tk, l.dv, 2);  // Vᵀ (Dv, S)
    for (std::size_t i = 0; i < c.blocks; ++i) {
      const std::size_t r0 = c.row(i), rows = c.row(i + 1) - r0, n = c.keys(i);
      gemm_bt(rows, n, l.dv, T(1), g + r0 * l.ldo, l.ldo, x.v, l.ldv, vt, tk, ds + r0 * tk, tk);
      for (std::size_t r = r0; r < r0 + rows; ++r)
        softmax_backward_row(ds + r * tk, p + r * tk, ks ? ks + r * tk : nullptr, n);
      if (dq) gemm(false, false, rows, l.dk, n, scale, ds + r0 * tk, tk, x.k, l.ldk, beta, dq + x.qo + r0 * l.ldq, l.ldq);
    }
    if (dk)
      for (std::size_t i = 0; i < c.blocks; ++i) key_block_grad(c, i, l.dk, scale, ds, x.q, l.ldq, beta, dk + x.ko, l.ldk);
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
         [l, scale, causal = o.causal, saved = std::move(saved)](const Tensor& g, const Inputs& in) {
           const Tensor& q = in[0];
           const Tensor& k = in[1];
           const Tensor& v = in[2];
           T* gq = q.requires_grad() ? q.grad_buffer<T>() : nullptr;
           T* gk = k.requires_grad() ? k.grad_buffer<T>() : nullptr;
           T* gv = v.requires_grad() ? v.grad_buffer<T>() : nullptr;
           attention_backward(g.data<T>(), q.data<T>(), k.data<T>(), v.data<T>(),
                              saved.probs.template data<T>(),
                              saved.keep.empty() ? nullptr : saved.keep.data(), l, causal, scale,
                              T(1), gq, gk, gv);
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
         [l, scale, width, causal = o.causal, saved = std::move(saved)](const Tensor& g, const Inputs& in) {
           const T* q = in[0].data<T>();
           // Every element of the gradient belongs to one (batch, head) block of q, k or v,
           // written once: a fresh buffer needs no zero fill (beta 0).
           const GradTarget<T> gqkv = grad_for_write<T>(in[0]);
           T* gq = gqkv.data;
           attention_backward(g.data<T>(), q, q + width, q + 2 * width,
                              saved.probs.template data<T>(),
                              saved.keep.empty() ? nullptr : saved.keep.data(), l, causal, scale,
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
