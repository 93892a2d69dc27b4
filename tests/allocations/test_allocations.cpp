// Heap allocations of a training step once it has run a few times (issue #11): this
// binary replaces the global operator new to count them, which is why it is a test
// executable of its own. What is asserted, once warm:
//   - the optimizer (zero_grad, step) and gradient clipping allocate nothing at all;
//   - attention, the feed-forward and layer norm, forward and backward, allocate nothing
//     at all: every value buffer comes back from the buffer pool, and the graph's
//     bookkeeping (nodes, shapes, inputs, backward closures, the walk's lists) from its
//     small-block pool (core/buffer_pool.hpp), at batch 2 and at batch 16 alike, and on
//     two threads at batch 64, where the gemms, GELU and attention split over the pool.
// (Inside each large float gemm oneDNN takes one scratch buffer from malloc, not from
// operator new: it is the library's, outside qkv's pools, and is not counted here.)
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <atomic>
#include <cstdlib>
#include <memory>
#include <new>
#include <string>

#include "core/blas.hpp"
#include "core/buffer_pool.hpp"
#include "core/ops.hpp"
#include "core/parallel.hpp"
#include "core/random.hpp"
#include "layers/attention.hpp"
#include "layers/build_model.hpp"
#include "layers/feed_forward.hpp"
#include "layers/layer.hpp"
#include "layers/layer_norm.hpp"
#include "optim/adam.hpp"
#include "optim/clip.hpp"
#include "strict_yaml/config_node.hpp"

namespace {

// Counted on every thread between the start and the end of allocations_of, so that a
// task run on a pool worker (at two threads) counts too; no other thread runs meanwhile.
std::atomic<bool> counting{false};
std::atomic<std::size_t> count{0}, bytes{0};

void* counted_new(std::size_t size, std::size_t align) {
  if (counting.load()) {
    ++count;
    bytes += size;
  }
  void* p = align > alignof(std::max_align_t) ? std::aligned_alloc(align, (size + align - 1) / align * align)
                                              : std::malloc(size ? size : 1);
  if (!p) throw std::bad_alloc();
  return p;
}

struct Counted {
  std::size_t count, bytes;
};

template <class F> Counted allocations_of(F&& f) {
  count = 0;
  bytes = 0;
  counting = true;
  f();
  counting = false;
  return {count.load(), bytes.load()};
}

}  // namespace

void* operator new(std::size_t size) { return counted_new(size, 0); }
void* operator new[](std::size_t size) { return counted_new(size, 0); }
void* operator new(std::size_t size, std::align_val_t align) {
  return counted_new(size, static_cast<std::size_t>(align));
}
void* operator new[](std::size_t size, std::align_val_t align) {
  return counted_new(size, static_cast<std::size_t>(align));
}
void* operator new(std::size_t size, const std::nothrow_t&) noexcept {
  try {
    return counted_new(size, 0);
  } catch (...) {
    return nullptr;
  }
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }

using namespace qkv;
using core::Tensor;

namespace {

std::shared_ptr<layers::Transformer> small_model(core::Rng& rng) {
  const auto section = ConfigNode::parse(
      "model:\n  d_model: 32\n  heads: 4\n  layers: 2\n  d_ff: 64\n", "test.yaml").child("model");
  return layers::build_model(layers::read_transformer_options(section), 12, 16, rng);
}

core::Ids ids_for(std::size_t batch, std::size_t length, core::Rng& rng) {
  core::Ids ids{{batch, length}, std::vector<std::int32_t>(batch * length)};
  for (auto& id : ids.values) id = static_cast<std::int32_t>(rng.below(12));
  return ids;
}

// One forward and backward of a layer on (batch, 16, 32) inputs, the backward seeded with
// a fixed gradient (made outside the count, as the layer's input is); returns what the
// forward and backward allocated.
Counted layer_step(layers::Layer& layer, std::size_t batch, core::Rng& rng) {
  const Tensor x = Tensor::randn({batch, 16, 32}, rng).requires_grad_();
  const Tensor grad = Tensor::randn({batch, 16, 32}, rng);
  return allocations_of([&] { layer.forward(x).backward(grad); });
}

// At batch 2 and at `large_batch` (64 makes the feed-forward's gemms and GELU split over
// two threads, and attention its (batch, head) products).
void check_no_allocation(layers::Layer& layer, const char* name, std::size_t large_batch = 16) {
  const std::string layer_name = name;
  CAPTURE(layer_name);
  core::Rng rng(5);
  for (int warm = 0; warm < 3; ++warm) {
    layer_step(layer, 2, rng);
    layer_step(layer, large_batch, rng);
  }
  const std::size_t fresh = core::buffer_pool_stats().fresh;
  const std::size_t small_fresh = core::buffer_pool_stats().small_fresh;
  const Counted small = layer_step(layer, 2, rng);
  const Counted large = layer_step(layer, large_batch, rng);
  CHECK(core::buffer_pool_stats().fresh == fresh);  // every value buffer came from the pool
  CHECK(core::buffer_pool_stats().small_fresh == small_fresh);  // and every graph block
  CHECK(small.count == 0);
  CHECK(large.count == 0);
  CHECK(large.bytes == 0);
}

}  // namespace

TEST_CASE("the optimizer and gradient clipping allocate nothing once warm") {
  core::Rng rng(1);
  auto model = small_model(rng);
  const auto params = model->named_parameters();
  optim::OptimizerOptions options;
  options.lr = 1e-3;
  options.weight_decay = 0.1;
  optim::AdamW optimizer(optim::split_decay_groups(params), options);
  for (int step = 0; step < 6; ++step) {
    const core::Ids ids = ids_for(4, 16, rng);
    optimizer.zero_grad();
    const Tensor loss = core::cross_entropy(model->forward(ids), ids);
    loss.backward();
    const Counted optimizer_part = allocations_of([&] {
      optim::clip_grad_norm(params, 0.5);
      optimizer.step();
      optimizer.zero_grad();
    });
    if (step >= 3) CHECK(optimizer_part.count == 0);
  }
}

// Attention, the feed-forward and layer norm, each checked as above (on two threads,
// core::parallel_tasks hands its tasks over by reference: a std::function allocated at
// every split).
void check_layers(std::size_t large_batch) {
  core::Rng rng(2);
  layers::MultiHeadAttentionOptions attention;
  attention.d_model = 32;
  attention.heads = 4;
  layers::MultiHeadAttention attn(attention, rng);
  check_no_allocation(attn, "attention", large_batch);
  layers::FeedForwardOptions ffn;
  ffn.dim = 32;
  ffn.hidden = 128;
  layers::FeedForward feed_forward(ffn, rng);
  check_no_allocation(feed_forward, "feed-forward", large_batch);
  layers::LayerNorm norm(32);
  check_no_allocation(norm, "layer norm", large_batch);
}

TEST_CASE("attention, feed-forward and layer norm allocate nothing once warm") { check_layers(16); }

TEST_CASE("attention, feed-forward and layer norm allocate nothing once warm on two threads") {
  core::ParallelScope parallel(2);
  check_layers(64);
}

int main(int argc, char** argv) {
  core::set_blas_threads(1);
  doctest::Context context(argc, argv);
  return context.run();
}
