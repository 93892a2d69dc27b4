// gemm and matmul and linear: forward against a naive triple loop, every transpose
// combination (in OpenBLAS and, for a large float product, in oneDNN), broadcast batch axes,
// and gradient checks.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>

#include "core/blas.hpp"
#include "tests/core/gradcheck_util.hpp"

using namespace qkv::core;
using qkv::test::check_gradients;
using qkv::test::rand64;

namespace {

// C = op(A) op(B) for 2-D row-major inputs, by definition.
std::vector<double> naive(const Tensor& a, const Tensor& b, bool ta, bool tb) {
  const std::size_t m = ta ? a.shape()[1] : a.shape()[0], k = ta ? a.shape()[0] : a.shape()[1];
  const std::size_t n = tb ? b.shape()[0] : b.shape()[1];
  std::vector<double> c(m * n, 0.0);
  for (std::size_t i = 0; i < m; ++i)
    for (std::size_t j = 0; j < n; ++j)
      for (std::size_t p = 0; p < k; ++p)
        c[i * n + j] += (ta ? a.at({p, i}) : a.at({i, p})) * (tb ? b.at({j, p}) : b.at({p, j}));
  return c;
}

}  // namespace

TEST_CASE("gemm: strided slices with leading dimensions, float and double") {
  // A 2x2 block inside a 3x4 buffer (lda 4) times a 2x2 matrix, accumulated with beta 1.
  std::vector<float> a = {1, 2, 0, 0, 3, 4, 0, 0, 9, 9, 9, 9};
  std::vector<float> b = {5, 6, 7, 8};
  std::vector<float> c = {1, 1, 1, 1};
  gemm(false, false, 2, 2, 2, 1.0f, a.data(), 4, b.data(), 2, 1.0f, c.data(), 2);
  CHECK(c == std::vector<float>{20, 23, 44, 51});
  std::vector<double> ad = {1, 2, 3, 4}, bd = {1, 0, 0, 1}, cd(4, 0.0);
  gemm(true, false, 2, 2, 2, 2.0, ad.data(), 2, bd.data(), 2, 0.0, cd.data(), 2);
  CHECK(cd == std::vector<double>{2, 6, 4, 8});
}

namespace {

// C = alpha op(A) op(B) + beta C for an (m, n, k) float product with every operand inside a
// wider buffer, checked against the definition; C's padding columns must stay untouched.
// With beta 0, C starts as NaN: it must be written, never read.
void check_strided_gemm(bool ta, bool tb, std::size_t m, std::size_t n, std::size_t k,
                        float beta) {
  const std::size_t pad = 3;
  const std::size_t a_rows = ta ? k : m, a_cols = ta ? m : k;
  const std::size_t b_rows = tb ? n : k, b_cols = tb ? k : n;
  const std::size_t lda = a_cols + pad, ldb = b_cols + pad, ldc = n + pad;
  std::vector<float> a(a_rows * lda), b(b_rows * ldb), c(m * ldc);
  for (std::size_t i = 0; i < a.size(); ++i) a[i] = static_cast<float>(i % 17) / 8 - 1;
  for (std::size_t i = 0; i < b.size(); ++i) b[i] = static_cast<float>(i % 13) / 6 - 1;
  const float padding = 42.0f;
  for (std::size_t i = 0; i < c.size(); ++i)
    c[i] = i % ldc >= n     ? padding
           : beta == 0.0f   ? std::numeric_limits<float>::quiet_NaN()
                            : static_cast<float>(i % 7);
  const std::vector<float> c0 = c;
  gemm(ta, tb, m, n, k, 0.5f, a.data(), lda, b.data(), ldb, beta, c.data(), ldc);
  for (std::size_t i = 0; i < m; ++i) {
    for (std::size_t j = 0; j < n; ++j) {
      double sum = 0;
      for (std::size_t p = 0; p < k; ++p)
        sum += double(ta ? a[p * lda + i] : a[i * lda + p]) * (tb ? b[j * ldb + p] : b[p * ldb + j]);
      const double before = beta == 0.0f ? 0.0 : beta * c0[i * ldc + j];
      CHECK(c[i * ldc + j] == doctest::Approx(before + 0.5 * sum).epsilon(1e-5));
    }
    for (std::size_t j = n; j < ldc; ++j) CHECK(c[i * ldc + j] == padding);
  }
}

}  // namespace

TEST_CASE("gemm: a float product large enough for oneDNN, strided, with alpha and beta") {
  // 160 x 130 x 210 is above core/blas.cpp's 512K multiply-adds, so it runs in oneDNN, the
  // library every Linear product of every size uses but the tiny size's head. Both orientations of C: a tall
  // Aᵀ B (m > n, a widening layer's weight gradient) runs as its transpose, Cᵀ = Bᵀ A, and
  // is added into C transposed.
  const std::size_t shapes[][3] = {{160, 130, 210}, {130, 160, 210}};
  for (const auto& s : shapes) {
    for (bool ta : {false, true}) {
      for (bool tb : {false, true}) {
        for (float beta : {1.0f, 0.0f}) {
          CAPTURE(s[0]);
          CAPTURE(ta);
          CAPTURE(tb);
          CAPTURE(beta);
          check_strided_gemm(ta, tb, s[0], s[1], s[2], beta);
        }
      }
    }
  }
}

TEST_CASE("matmul: 2-D forward matches the definition for every transpose combination") {
  for (bool ta : {false, true}) {
    for (bool tb : {false, true}) {
      Tensor a = rand64(ta ? Shape{4, 3} : Shape{3, 4}, 1);
      Tensor b = rand64(tb ? Shape{5, 4} : Shape{4, 5}, 2);
      const std::vector<double> got = matmul(a, b, ta, tb).to_vector();
      const std::vector<double> want = naive(a, b, ta, tb);
      REQUIRE(got.size() == want.size());
      for (std::size_t i = 0; i < got.size(); ++i) CHECK(got[i] == doctest::Approx(want[i]).epsilon(1e-12));
    }
  }
}

TEST_CASE("matmul: batched with broadcast batch axes") {
  Tensor a = rand64({2, 1, 3, 4}, 3);
  Tensor b = rand64({3, 4, 5}, 4);
  Tensor c = matmul(a, b);
  REQUIRE(c.shape() == Shape{2, 3, 3, 5});
  for (std::size_t i = 0; i < 2; ++i)
    for (std::size_t j = 0; j < 3; ++j) {
      Tensor ai = reshape(slice(a, 0, i, i + 1), {3, 4});
      Tensor bj = reshape(slice(b, 0, j, j + 1), {4, 5});
      Tensor cij = reshape(slice(slice(c, 0, i, i + 1), 1, j, j + 1), {3, 5});
      const std::vector<double> want = naive(ai, bj, false, false);
      const std::vector<double> got = cij.to_vector();
      for (std::size_t e = 0; e < got.size(); ++e) CHECK(got[e] == doctest::Approx(want[e]).epsilon(1e-12));
    }
}

TEST_CASE("matmul: backward matches finite differences") {
  for (bool ta : {false, true}) {
    for (bool tb : {false, true}) {
      CAPTURE(ta);
      CAPTURE(tb);
      auto f = [ta, tb](const std::vector<Tensor>& in) { return matmul(in[0], in[1], ta, tb); };
      check_gradients("matmul 2-D", f, {rand64(ta ? Shape{4, 3} : Shape{3, 4}, 1), rand64(tb ? Shape{5, 4} : Shape{4, 5}, 2)});
      check_gradients("matmul batched", f,
                      {rand64(ta ? Shape{2, 4, 3} : Shape{2, 3, 4}, 3), rand64(tb ? Shape{2, 5, 4} : Shape{2, 4, 5}, 4)});
      check_gradients("matmul broadcast batch", f,
                      {rand64(ta ? Shape{2, 1, 4, 3} : Shape{2, 1, 3, 4}, 5), rand64(tb ? Shape{3, 5, 4} : Shape{3, 4, 5}, 6)});
      check_gradients("matmul folded (B,T,C)x(C,N)", f,
                      {rand64(ta ? Shape{2, 4, 3} : Shape{2, 3, 4}, 7), rand64(tb ? Shape{5, 4} : Shape{4, 5}, 8)});
    }
  }
}

TEST_CASE("linear: x Wᵀ + b, forward and backward") {
  Tensor x = Tensor::from_vector(std::vector<double>{1, 2, 3, 4}, {2, 2});
  Tensor w = Tensor::from_vector(std::vector<double>{1, 0, 0, 1, 1, 1}, {3, 2});
  Tensor b = Tensor::from_vector(std::vector<double>{10, 20, 30}, {3});
  CHECK(linear(x, w, b).to_vector() == std::vector<double>{11, 22, 33, 13, 24, 37});
  CHECK(linear(x, w).to_vector() == std::vector<double>{1, 2, 3, 3, 4, 7});
  check_gradients("linear", [](const std::vector<Tensor>& in) { return linear(in[0], in[1], in[2]); },
                  {rand64({2, 3, 4}, 1), rand64({5, 4}, 2), rand64({5}, 3)});
  check_gradients("linear no bias", [](const std::vector<Tensor>& in) { return linear(in[0], in[1]); },
                  {rand64({3, 4}, 4), rand64({2, 4}, 5)});
}

TEST_CASE("matmul and linear: shape errors name both shapes") {
  CHECK_THROWS_WITH_AS(matmul(Tensor::zeros({2, 3}), Tensor::zeros({4, 5})),
                       doctest::Contains("matmul: inner dimensions differ (shapes [2, 3] and [4, 5])"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(matmul(Tensor::zeros({2, 2, 3}), Tensor::zeros({3, 3, 2})),
                       doctest::Contains("matmul: shapes do not broadcast"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(matmul(Tensor::zeros({3}), Tensor::zeros({3, 2})),
                       doctest::Contains("at least 2 axes"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(linear(Tensor::zeros({2, 3}), Tensor::zeros({4, 2})),
                       doctest::Contains("linear: input (..., in) needs weight (out, in) (shapes [2, 3] and [4, 2])"),
                       std::invalid_argument);
}
