// Central finite differences against autograd, in double. See gradcheck.hpp.
#include "core/gradcheck.hpp"

#include <algorithm>
#include <cmath>
#include <sstream>
#include <stdexcept>

#include "core/ops.hpp"
#include "core/random.hpp"

namespace qkv::core {

namespace {

// Σ y ⊙ r, the scalar whose gradient is checked.
double weighted_sum(const Tensor& y, const std::vector<double>& r) {
  const double* py = y.data<double>();
  double total = 0;
  for (std::size_t i = 0; i < r.size(); ++i) total += py[i] * r[i];
  return total;
}

std::string index_str(const Shape& shape, std::size_t flat) {
  std::vector<std::size_t> index(shape.size());
  for (std::size_t d = shape.size(); d-- > 0;) {
    index[d] = flat % shape[d];
    flat /= shape[d];
  }
  return shape_str(index);
}

}  // namespace

GradcheckResult gradcheck(const std::string& op, const GradcheckFn& f, const std::vector<Tensor>& inputs,
                          const GradcheckOptions& options) {
  std::vector<Tensor> xs = inputs;
  for (std::size_t n = 0; n < xs.size(); ++n) {
    if (!xs[n].defined() || xs[n].dtype() != DType::f64)
      throw std::invalid_argument("gradcheck '" + op + "': input " + std::to_string(n) +
                                  " must be a defined float64 tensor");
    if (!xs[n].requires_grad()) xs[n].requires_grad_();
    xs[n].zero_grad();
  }

  // Analytic gradients of Σ y ⊙ r.
  Rng rng(options.seed);
  std::vector<double> r;
  std::vector<std::vector<double>> analytic(xs.size());
  {
    Tensor y = f(xs);
    if (y.dtype() != DType::f64)
      throw std::invalid_argument("gradcheck '" + op + "': the function must return float64");
    r.resize(y.numel());
    for (double& v : r) v = rng.normal();
    Tensor rt = Tensor::from_vector(r, y.shape());
    sum(mul(y, rt)).backward();
    for (std::size_t n = 0; n < xs.size(); ++n) {
      Tensor g = xs[n].grad();
      analytic[n] = g.defined() ? g.to_vector() : std::vector<double>(xs[n].numel(), 0.0);
      xs[n].zero_grad();
    }
  }

  NoGrad no_grad;
  auto value = [&] { return weighted_sum(f(xs), r); };
  GradcheckResult result;
  auto compare = [&](double numeric, double exact, const std::string& where) {
    const double abs_err = std::abs(numeric - exact);
    const double scale = std::max(std::abs(numeric), std::abs(exact));
    const double rel_err = scale > 0 ? abs_err / scale : 0.0;
    result.max_abs_error = std::max(result.max_abs_error, abs_err);
    if (abs_err > options.atol) result.max_rel_error = std::max(result.max_rel_error, rel_err);
    ++result.checked;
    if (result.ok && abs_err > options.atol + options.rtol * scale) {
      result.ok = false;
      std::ostringstream msg;
      msg.precision(10);
      msg << "gradcheck '" << op << "': " << where << ": numeric " << numeric << ", analytic "
          << exact << " (abs error " << abs_err << ", rel error " << rel_err << ")";
      result.message = msg.str();
    }
  };

  if (options.directions <= 0) {
    for (std::size_t n = 0; n < xs.size(); ++n) {
      double* x = xs[n].data<double>();
      for (std::size_t i = 0; i < xs[n].numel(); ++i) {
        const double saved = x[i];
        x[i] = saved + options.eps;
        const double plus = value();
        x[i] = saved - options.eps;
        const double minus = value();
        x[i] = saved;
        compare((plus - minus) / (2 * options.eps), analytic[n][i],
                "input " + std::to_string(n) + " " + shape_str(xs[n].shape()) + " element " +
                    index_str(xs[n].shape(), i));
      }
    }
    return result;
  }

  for (int d = 0; d < options.directions; ++d) {
    std::vector<std::vector<double>> u(xs.size()), saved(xs.size());
    double exact = 0;
    for (std::size_t n = 0; n < xs.size(); ++n) {
      saved[n] = xs[n].to_vector();
      u[n].resize(xs[n].numel());
      for (std::size_t i = 0; i < u[n].size(); ++i) {
        u[n][i] = rng.normal();
        exact += u[n][i] * analytic[n][i];
      }
    }
    auto shift = [&](double step) {
      for (std::size_t n = 0; n < xs.size(); ++n) {
        double* x = xs[n].data<double>();
        for (std::size_t i = 0; i < u[n].size(); ++i) x[i] = saved[n][i] + step * u[n][i];
      }
    };
    shift(options.eps);
    const double plus = value();
    shift(-options.eps);
    const double minus = value();
    shift(0.0);
    compare((plus - minus) / (2 * options.eps), exact, "random direction " + std::to_string(d));
  }
  return result;
}

}  // namespace qkv::core
