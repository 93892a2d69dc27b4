// Central finite differences against autograd, in double. See gradcheck.hpp.
#include "core/gradcheck.hpp"

#include <algorithm>
#include <cmath>
#include <functional>
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
  Shape index(shape.size());
  for (std::size_t d = shape.size(); d-- > 0;) {
    index[d] = flat % shape[d];
    flat /= shape[d];
  }
  return shape_str(index);
}

// The inputs as leaves that require grad, with no gradient yet.
std::vector<Tensor> prepare_inputs(const std::string& op, const std::vector<Tensor>& inputs) {
  std::vector<Tensor> xs = inputs;
  for (std::size_t n = 0; n < xs.size(); ++n) {
    if (!xs[n].defined() || xs[n].dtype() != DType::f64)
      throw std::invalid_argument("gradcheck '" + op + "': input " + std::to_string(n) +
                                  " must be a defined float64 tensor");
    if (!xs[n].requires_grad()) xs[n].requires_grad_();
    xs[n].zero_grad();
  }
  return xs;
}

// The analytic gradients of Σ y ⊙ r, one vector per input, and r itself (drawn from rng).
struct Analytic {
  std::vector<double> r;
  std::vector<std::vector<double>> grads;
};

Analytic analytic_gradients(const std::string& op, const GradcheckFn& f, std::vector<Tensor>& xs,
                            Rng& rng) {
  Analytic a;
  a.grads.resize(xs.size());
  Tensor y = f(xs);
  if (y.dtype() != DType::f64)
    throw std::invalid_argument("gradcheck '" + op + "': the function must return float64");
  a.r.resize(y.numel());
  for (double& v : a.r) v = rng.normal();
  Tensor rt = Tensor::from_vector(a.r, y.shape());
  sum(mul(y, rt)).backward();
  for (std::size_t n = 0; n < xs.size(); ++n) {
    Tensor g = xs[n].grad();
    a.grads[n] = g.defined() ? g.to_vector() : std::vector<double>(xs[n].numel(), 0.0);
    xs[n].zero_grad();
  }
  return a;
}

// Folds each numeric/analytic pair into the result; the first failure writes the message.
class Comparison {
 public:
  Comparison(const std::string& op, const GradcheckOptions& options) : op_(op), options_(options) {}

  void operator()(double numeric, double exact, const std::string& where) {
    const double abs_err = std::abs(numeric - exact);
    const double scale = std::max(std::abs(numeric), std::abs(exact));
    const double rel_err = scale > 0 ? abs_err / scale : 0.0;
    result_.max_abs_error = std::max(result_.max_abs_error, abs_err);
    if (abs_err > options_.atol) result_.max_rel_error = std::max(result_.max_rel_error, rel_err);
    ++result_.checked;
    if (result_.ok && abs_err > options_.atol + options_.rtol * scale) {
      result_.ok = false;
      std::ostringstream msg;
      msg.precision(10);
      msg << "gradcheck '" << op_ << "': " << where << ": numeric " << numeric << ", analytic "
          << exact << " (abs error " << abs_err << ", rel error " << rel_err << ")";
      result_.message = msg.str();
    }
  }

  const GradcheckResult& result() const { return result_; }

 private:
  const std::string& op_;
  const GradcheckOptions& options_;
  GradcheckResult result_;
};

using ValueFn = std::function<double()>;

// Central differences on every element of every input, perturbed in place.
void check_elements(std::vector<Tensor>& xs, const ValueFn& value, const Analytic& analytic,
                    double eps, Comparison& compare) {
  for (std::size_t n = 0; n < xs.size(); ++n) {
    double* x = xs[n].data<double>();
    for (std::size_t i = 0; i < xs[n].numel(); ++i) {
      const double saved = x[i];
      x[i] = saved + eps;
      const double plus = value();
      x[i] = saved - eps;
      const double minus = value();
      x[i] = saved;
      compare((plus - minus) / (2 * eps), analytic.grads[n][i],
              "input " + std::to_string(n) + " " + shape_str(xs[n].shape()) + " element " +
                  index_str(xs[n].shape(), i));
    }
  }
}

// Central differences along random directions u over all inputs at once, against the
// analytic directional derivative Σ u ⊙ grad.
void check_directions(std::vector<Tensor>& xs, const ValueFn& value, const Analytic& analytic,
                      const GradcheckOptions& options, Rng& rng, Comparison& compare) {
  for (int d = 0; d < options.directions; ++d) {
    std::vector<std::vector<double>> u(xs.size()), saved(xs.size());
    double exact = 0;
    for (std::size_t n = 0; n < xs.size(); ++n) {
      saved[n] = xs[n].to_vector();
      u[n].resize(xs[n].numel());
      for (std::size_t i = 0; i < u[n].size(); ++i) {
        u[n][i] = rng.normal();
        exact += u[n][i] * analytic.grads[n][i];
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
}

}  // namespace

GradcheckResult gradcheck(const std::string& op, const GradcheckFn& f, const std::vector<Tensor>& inputs,
                          const GradcheckOptions& options) {
  std::vector<Tensor> xs = prepare_inputs(op, inputs);
  Rng rng(options.seed);  // r first, then the random directions
  const Analytic analytic = analytic_gradients(op, f, xs, rng);
  NoGrad no_grad;
  const ValueFn value = [&] { return weighted_sum(f(xs), analytic.r); };
  Comparison compare(op, options);
  if (options.directions <= 0) check_elements(xs, value, analytic, options.eps, compare);
  else check_directions(xs, value, analytic, options, rng, compare);
  return compare.result();
}

}  // namespace qkv::core
