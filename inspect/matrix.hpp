// Matrix: a small dense row-major matrix of doubles, the plain value type of inspect's
// results (circuits, similarity tables, attention maps), so that its headers stay free of
// xtensor and its results are easy to print, compare and write as JSON.
//
//   Matrix m(2, 3);          // zeros
//   m(1, 2) = 0.5;
//   double v = m(1, 2);
#pragma once

#include <cstddef>
#include <vector>

namespace qkv::inspect {

struct Matrix {
  std::size_t rows = 0;
  std::size_t cols = 0;
  std::vector<double> values;  // rows × cols, row-major

  Matrix() = default;
  Matrix(std::size_t r, std::size_t c) : rows(r), cols(c), values(r * c, 0.0) {}

  double& operator()(std::size_t r, std::size_t c) { return values[r * cols + c]; }
  double operator()(std::size_t r, std::size_t c) const { return values[r * cols + c]; }
  bool empty() const { return values.empty(); }

  static Matrix identity(std::size_t n, double scale = 1.0) {
    Matrix m(n, n);
    for (std::size_t i = 0; i < n; ++i) m(i, i) = scale;
    return m;
  }
};

}  // namespace qkv::inspect
