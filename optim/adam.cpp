// Adam and AdamW: one fused update kernel for both (see adam.hpp), one pass over a span of
// the flat buffers (a whole parameter group at once).
#include "optim/adam.hpp"

#include <cmath>

#include "optim/option_check.hpp"

namespace qkv::optim {

namespace {

// The hyperparameters both variants share.
struct Moments {
  double beta1;
  double beta2;
  double eps;
};

// One pass over a parameter: p, its gradient g and moments m, v (n elements each).
// l2 is Adam's weight decay (folded into the gradient); shrink is AdamW's 1 - lr * wd.
template <class T>
void adam_update(T* p, const T* grad, T* m, T* v, std::size_t n, T beta1, T beta2, T eps,
                 T l2, T shrink, T step_size, T bias_correction2_sqrt) {
  const T one_minus_beta1 = T(1) - beta1;
  const T one_minus_beta2 = T(1) - beta2;
  for (std::size_t i = 0; i < n; ++i) {
    T g = grad[i];
    if (l2 != T(0)) g += l2 * p[i];
    const T m_i = beta1 * m[i] + one_minus_beta1 * g;
    const T v_i = beta2 * v[i] + one_minus_beta2 * g * g;
    m[i] = m_i;
    v[i] = v_i;
    const T denom = std::sqrt(v_i) / bias_correction2_sqrt + eps;
    p[i] = p[i] * shrink - step_size * (m_i / denom);
  }
}

template <class T>
void adam_update(const UpdateSpan& span, const Moments& h, double lr, double l2, double shrink) {
  const double t = static_cast<double>(span.step);
  const double bias_correction1 = 1.0 - std::pow(h.beta1, t);
  const double bias_correction2 = 1.0 - std::pow(h.beta2, t);
  adam_update<T>(static_cast<T*>(span.values), static_cast<const T*>(span.grads),
                 static_cast<T*>(span.buffers[0]), static_cast<T*>(span.buffers[1]), span.count,
                 T(h.beta1), T(h.beta2), T(h.eps), T(l2), T(shrink), T(lr / bias_correction1),
                 T(std::sqrt(bias_correction2)));
}

void dispatch(const UpdateSpan& span, const Moments& h, double lr, double l2, double shrink) {
  if (span.dtype == core::DType::f32) {
    adam_update<float>(span, h, lr, l2, shrink);
  } else {
    adam_update<double>(span, h, lr, l2, shrink);
  }
}

const std::vector<std::string> moment_buffers = {"exp_avg", "exp_avg_sq"};

}  // namespace

Adam::Adam(const std::vector<core::NamedParameter>& params, const OptimizerOptions& options)
    : Adam(std::vector<ParamGroup>{ParamGroup{params, {}, {}}}, options) {}

Adam::Adam(std::vector<ParamGroup> groups, const OptimizerOptions& options)
    : Optimizer("adam", std::move(groups), detail::checked_as("adam", options).lr,
                options.weight_decay, moment_buffers),
      options_(options) {
  options_.type = "adam";
  set_schedule(Schedule(options_.schedule, options_.lr));
}

void Adam::update(const UpdateSpan& span, double lr, double weight_decay) {
  const OptimizerOptions& o = options_;
  dispatch(span, Moments{o.betas[0], o.betas[1], o.eps}, lr, weight_decay, 1.0);
}

AdamW::AdamW(const std::vector<core::NamedParameter>& params, const OptimizerOptions& options)
    : AdamW(std::vector<ParamGroup>{ParamGroup{params, {}, {}}}, options) {}

AdamW::AdamW(std::vector<ParamGroup> groups, const OptimizerOptions& options)
    : Optimizer("adamw", std::move(groups), detail::checked_as("adamw", options).lr,
                options.weight_decay, moment_buffers),
      options_(options) {
  options_.type = "adamw";
  set_schedule(Schedule(options_.schedule, options_.lr));
}

void AdamW::update(const UpdateSpan& span, double lr, double weight_decay) {
  const OptimizerOptions& o = options_;
  dispatch(span, Moments{o.betas[0], o.betas[1], o.eps}, lr, 0.0, 1.0 - lr * weight_decay);
}

}  // namespace qkv::optim
