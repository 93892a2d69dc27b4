// The per-thread pool and what runs on it: parallel_for covers every index once, inline
// without a scope; gemm split over two threads, attention, the same-shape binary ops and
// layer norm at two threads are bit for bit the one-thread result; separate threads with their own scopes
// (ablate's several Trainers in one process) do not disturb each other.
#include <doctest/doctest.h>

#include <atomic>
#include <stdexcept>
#include <thread>
#include <vector>

#include "core/blas.hpp"
#include "core/ops.hpp"
#include "core/parallel.hpp"
#include "core/random.hpp"

using namespace qkv::core;

namespace {

std::vector<float> random_floats(std::size_t n, std::uint64_t seed) {
  Rng rng(seed);
  std::vector<float> v(n);
  for (float& x : v) x = static_cast<float>(rng.normal());
  return v;
}

// C = op(A) op(B) for (m, n, k) with the given transposes, at the current thread count.
std::vector<float> product(bool ta, bool tb, std::size_t m, std::size_t n, std::size_t k) {
  const std::vector<float> a = random_floats(m * k, 1), b = random_floats(k * n, 2);
  std::vector<float> c(m * n, 1.0f);
  gemm(ta, tb, m, n, k, 1.0f, a.data(), ta ? m : k, b.data(), tb ? k : n, 0.5f, c.data(), n);
  return c;
}

struct AttentionRun {
  std::vector<double> out, dq, dk, dv;
};

AttentionRun attention_run(bool v_shared) {
  Rng rng(7);
  const std::size_t B = 8, T = 64, H = 4, D = 16;
  Tensor q = Tensor::randn({B, T, H * D}, rng).requires_grad_();
  Tensor k = Tensor::randn({B, T, H * D}, rng).requires_grad_();
  Tensor v = Tensor::randn({B, T, v_shared ? D : H * D}, rng).requires_grad_();
  AttentionOptions o;
  o.heads = H;
  o.scale = 0.25;
  o.v_shared = v_shared;
  const Tensor out = attention(q, k, v, o);
  sum(mul(out, out)).backward();
  return {out.to_vector(), q.grad().to_vector(), k.grad().to_vector(), v.grad().to_vector()};
}

}  // namespace

TEST_CASE("parallel_for: every index once, inline without a scope") {
  CHECK(parallel_threads() == 1);
  for (std::size_t threads : {1u, 2u, 3u}) {
    ParallelScope scope(threads);
    CHECK(parallel_threads() == threads);
    std::vector<std::atomic<int>> hits(1000);
    parallel_for(hits.size(), 10, [&](std::size_t begin, std::size_t end) {
      CHECK(parallel_threads() == 1);  // a task's own parallel_for runs inline
      for (std::size_t i = begin; i < end; ++i) ++hits[i];
    });
    for (const auto& h : hits) CHECK(h.load() == 1);
  }
  CHECK(parallel_threads() == 1);
}

TEST_CASE("parallel_for: a range under the minimum chunk runs as one call") {
  ParallelScope scope(2);
  int calls = 0;
  parallel_for(15, 10, [&](std::size_t begin, std::size_t end) {
    ++calls;
    CHECK(begin == 0);
    CHECK(end == 15);
  });
  CHECK(calls == 1);
}

TEST_CASE("parallel_tasks: a task's exception reaches the caller, and the pool works on") {
  ParallelScope scope(2);
  CHECK_THROWS_WITH_AS(parallel_tasks(8, [](std::size_t i) {
                         if (i == 5) throw std::runtime_error("task 5");
                       }),
                       "task 5", std::runtime_error);
  std::atomic<int> ran{0};
  parallel_tasks(8, [&](std::size_t) { ++ran; });
  CHECK(ran.load() == 8);
}

TEST_CASE("ParallelScope: zero threads is an error") {
  CHECK_THROWS_WITH_AS(ParallelScope(0), "ParallelScope: threads must be at least 1, got 0",
                       std::invalid_argument);
}

TEST_CASE("gemm: split over two threads, every transpose and both split axes, bit for bit") {
  // 4M multiply-adds and more are split: by rows when m >= n, by columns otherwise. These
  // float products run in oneDNN, whole or in parts, and each part's k-sums are the
  // unsplit ones, so the bits are too.
  const std::size_t shapes[][3] = {{400, 100, 120}, {90, 500, 110}};
  for (const auto& s : shapes) {
    for (bool ta : {false, true}) {
      for (bool tb : {false, true}) {
        CAPTURE(s[0]);
        CAPTURE(ta);
        CAPTURE(tb);
        const std::vector<float> one = product(ta, tb, s[0], s[1], s[2]);
        ParallelScope scope(2);
        const std::vector<float> two = product(ta, tb, s[0], s[1], s[2]);
        CHECK(product(ta, tb, s[0], s[1], s[2]) == two);  // the same split every time
        for (std::size_t i = 0; i < one.size(); ++i)
          CHECK(two[i] == one[i]);
      }
    }
  }
}

TEST_CASE("attention: two threads give the one-thread result bit for bit") {
  for (bool shared : {false, true}) {
    CAPTURE(shared);
    const AttentionRun one = attention_run(shared);
    ParallelScope scope(2);
    const AttentionRun two = attention_run(shared);
    CHECK(two.out == one.out);
    CHECK(two.dq == one.dq);
    CHECK(two.dk == one.dk);
    CHECK(two.dv == one.dv);
  }
}

TEST_CASE("binary ops of one shape: two threads give the one-thread result bit for bit") {
  // Past the 65536 elements from which a pass splits, and not a whole number of blocks.
  const std::size_t n = 3 * 65536 + 13;
  const std::vector<float> xs = random_floats(n, 3), ys = random_floats(n, 4);
  auto run = [&](auto op) {
    Tensor a = Tensor::from_vector(xs, {n}).requires_grad_();
    Tensor b = (Tensor::from_vector(ys, {n}) + 3.0).detach().requires_grad_();
    const Tensor out = op(a, b);
    sum(mul(out, out)).backward();
    return std::vector<std::vector<double>>{out.to_vector(), a.grad().to_vector(),
                                            b.grad().to_vector()};
  };
  for (int which = 0; which < 4; ++which) {
    CAPTURE(which);
    auto op = [which](const Tensor& a, const Tensor& b) {
      return which == 0 ? add(a, b) : which == 1 ? sub(a, b) : which == 2 ? mul(a, b) : div(a, b);
    };
    const auto one = run(op);
    ParallelScope scope(2);
    CHECK(run(op) == one);
  }
}

TEST_CASE("layer_norm: two threads give the one-thread result bit for bit") {
  // One thread takes each row's dw, db and dx in one pass; two split dx's rows and sum dw
  // and db in a pass of their own. Both are the same row functions in the same order.
  auto run = [] {
    Rng rng(5);
    const Tensor x = Tensor::randn({4096, 64}, rng).requires_grad_();
    const Tensor w = Tensor::randn({64}, rng).requires_grad_();
    const Tensor b = Tensor::randn({64}, rng).requires_grad_();
    const Tensor r = Tensor::randn({4096, 64}, rng);
    const Tensor y = layer_norm(mul(x, 2.0), w, b, 1e-5);  // x's gradient through an intermediate
    sum(mul(y, r)).backward();
    return std::vector<std::vector<double>>{y.to_vector(), x.grad().to_vector(),
                                            w.grad().to_vector(), b.grad().to_vector()};
  };
  const auto one = run();
  ParallelScope scope(2);
  const auto two = run();
  REQUIRE(two.size() == one.size());
  for (std::size_t i = 0; i < one.size(); ++i) {
    CAPTURE(i);
    CHECK(two[i] == one[i]);
  }
}

TEST_CASE("ParallelScope: threads with their own scopes run side by side") {
  const std::vector<float> expected = product(false, true, 400, 100, 120);
  std::vector<std::vector<float>> results(3);
  std::vector<std::thread> threads;
  for (std::size_t t = 0; t < results.size(); ++t) {
    threads.emplace_back([&results, t] {
      ParallelScope scope(2);
      for (int repeat = 0; repeat < 20; ++repeat) results[t] = product(false, true, 400, 100, 120);
    });
  }
  for (std::thread& t : threads) t.join();
  for (const auto& r : results) {
    REQUIRE(r.size() == expected.size());
    for (std::size_t i = 0; i < r.size(); ++i)
      CHECK(r[i] == doctest::Approx(expected[i]).epsilon(1e-5).scale(1.0));
  }
}
