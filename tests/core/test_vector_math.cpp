// The vectorized exp / erf / softmax-row kernels against <cmath>, across array lengths
// that exercise both the SIMD body and the scalar tail.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "core/vector_math.hpp"

using namespace qkv::core::detail;

TEST_CASE("vector math: exp and erf match <cmath> in float and double") {
  for (std::size_t n : {1u, 7u, 16u, 37u, 1000u}) {
    CAPTURE(n);
    std::vector<float> xf(n), ef(n), rf(n);
    std::vector<double> xd(n), ed(n), rd(n);
    for (std::size_t i = 0; i < n; ++i) {  // [-20, 5): erf's whole range and exp's
      xd[i] = -20.0 + 25.0 * static_cast<double>(i) / static_cast<double>(n);
      xf[i] = static_cast<float>(xd[i]);
    }
    exp_array(xf.data(), ef.data(), n);
    erf_array(xf.data(), rf.data(), n);
    exp_array(xd.data(), ed.data(), n);
    erf_array(xd.data(), rd.data(), n);
    for (std::size_t i = 0; i < n; ++i) {
      CHECK(ef[i] == doctest::Approx(std::exp(xf[i])).epsilon(4e-7));
      CHECK(std::abs(rf[i] - std::erf(static_cast<double>(xf[i]))) < 5e-7);
      CHECK(ed[i] == doctest::Approx(std::exp(xd[i])).epsilon(1e-14));
      CHECK(rd[i] == doctest::Approx(std::erf(xd[i])).epsilon(1e-14).scale(1e-14));
    }
  }
}

TEST_CASE("vector math: exp of -inf is exactly zero, so masked softmax entries stay zero") {
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<float> x(20, -inf), y(20);
  x[3] = 0.5f;
  exp_array(x.data(), y.data(), x.size());
  CHECK(y[0] == 0.0f);
  CHECK(y[19] == 0.0f);
  softmax_row(x.data(), y.data(), x.size());
  for (std::size_t i = 0; i < y.size(); ++i) CHECK(y[i] == (i == 3 ? 1.0f : 0.0f));
  std::vector<float> scratch(20);
  CHECK(log_sum_exp_row(x.data(), scratch.data(), x.size()) == doctest::Approx(0.5f));
  std::vector<float> all_masked(5, -inf), out(5, 1.0f);
  softmax_row(all_masked.data(), out.data(), out.size());
  CHECK(out == std::vector<float>(5, 0.0f));
}

TEST_CASE("vector math: a NaN in a row makes the row's softmax and log-sum-exp NaN") {
  for (std::size_t at : {0u, 5u, 16u, 19u}) {
    CAPTURE(at);
    std::vector<float> x(20, -1.0f), y(20), scratch(20);
    x[at] = std::nanf("");
    softmax_row(x.data(), y.data(), x.size());
    for (float v : y) CHECK(std::isnan(v));
    CHECK(std::isnan(log_sum_exp_row(x.data(), scratch.data(), x.size())));
    // Every other entry masked: the maximum of the non-NaN entries is -inf.
    std::vector<float> masked(20, -std::numeric_limits<float>::infinity());
    masked[at] = std::nanf("");
    CHECK(std::isnan(log_sum_exp_row(masked.data(), scratch.data(), masked.size())));
    softmax_row(masked.data(), y.data(), masked.size());
    for (float v : y) CHECK(std::isnan(v));
  }
}

TEST_CASE("vector math: float erf stays within 5e-7 of erf on a fine grid, and is odd") {
  const std::size_t n = 200001;  // [-6, 6] in steps of 6e-5
  std::vector<float> x(n), y(n), neg(n), yn(n);
  for (std::size_t i = 0; i < n; ++i) {
    x[i] = static_cast<float>(-6.0 + 12.0 * static_cast<double>(i) / static_cast<double>(n - 1));
    neg[i] = -x[i];
  }
  erf_array(x.data(), y.data(), n);
  erf_array(neg.data(), yn.data(), n);
  double worst = 0;
  bool odd = true;
  for (std::size_t i = 0; i < n; ++i) {
    worst = std::max(worst, std::abs(y[i] - std::erf(static_cast<double>(x[i]))));
    odd = odd && yn[i] == -y[i];
  }
  CHECK(worst < 5e-7);
  CHECK(odd);
}

TEST_CASE("vector math: gelu_array gives x Φ(x) and its derivative, with or without the slope") {
  for (std::size_t n : {1u, 15u, 16u, 37u, 1000u}) {  // the SIMD body and the scalar tail
    CAPTURE(n);
    std::vector<float> x(n), y(n), slope(n), y_alone(n);
    std::vector<double> xd(n), yd(n), sd(n);
    for (std::size_t i = 0; i < n; ++i) {  // [-6, 6): both tails of Φ and the middle
      xd[i] = -6.0 + 12.0 * static_cast<double>(i) / static_cast<double>(n);
      x[i] = static_cast<float>(xd[i]);
    }
    gelu_array(x.data(), y.data(), slope.data(), n);
    gelu_array(x.data(), y_alone.data(), nullptr, n);
    gelu_array(xd.data(), yd.data(), sd.data(), n);
    CHECK(y_alone == y);
    for (std::size_t i = 0; i < n; ++i) {
      const double v = x[i], phi = 0.5 * (1.0 + std::erf(v / std::sqrt(2.0)));
      const double density = std::exp(-0.5 * v * v) / std::sqrt(2.0 * M_PI);
      CHECK(std::abs(y[i] - v * phi) < 2e-6);
      CHECK(std::abs(slope[i] - (phi + v * density)) < 1e-6);
      const double w = xd[i], phi_d = 0.5 * (1.0 + std::erf(w / std::sqrt(2.0)));
      // Absolute (1 + erf cancels for negative x, in the reference as in the kernel), and
      // scaled by |x| <= 6 for y.
      CHECK(std::abs(yd[i] - w * phi_d) < 6e-14);
      CHECK(std::abs(sd[i] - (phi_d + w * std::exp(-0.5 * w * w) / std::sqrt(2.0 * M_PI))) < 1e-14);
    }
  }
}
