// SGD: the fused per-parameter update (see sgd.hpp for the rule).
#include "optim/sgd.hpp"

#include "optim/option_check.hpp"

namespace qkv::optim {

namespace {

std::vector<std::string> buffers_for(const OptimizerOptions& o) {
  if (o.momentum == 0) return {};
  return {"momentum_buffer"};
}

// One pass over a parameter. `buffer` is null without momentum; `first` marks the
// parameter's first update, which starts the momentum buffer at the gradient.
template <class T>
void sgd_update(T* p, const T* grad, T* buffer, std::size_t n, T lr, T weight_decay, T momentum,
                T dampening, bool nesterov, bool first) {
  const T keep = T(1) - dampening;
  for (std::size_t i = 0; i < n; ++i) {
    T g = grad[i];
    if (weight_decay != T(0)) g += weight_decay * p[i];
    if (buffer) {
      const T b = first ? g : momentum * buffer[i] + keep * g;
      buffer[i] = b;
      g = nesterov ? g + momentum * b : b;
    }
    p[i] -= lr * g;
  }
}

template <class T>
void sgd_update(const UpdateSpan& span, const OptimizerOptions& o, double lr, double weight_decay) {
  sgd_update<T>(static_cast<T*>(span.values), static_cast<const T*>(span.grads),
                static_cast<T*>(span.buffers[0]), span.count, T(lr), T(weight_decay),
                T(o.momentum), T(o.dampening), o.nesterov, span.step == 1);
}

}  // namespace

SGD::SGD(const std::vector<core::NamedParameter>& params, const OptimizerOptions& options)
    : SGD(std::vector<ParamGroup>{ParamGroup{params, {}, {}}}, options) {}

SGD::SGD(std::vector<ParamGroup> groups, const OptimizerOptions& options)
    : Optimizer("sgd", std::move(groups), detail::checked_as("sgd", options).lr,
                options.weight_decay, buffers_for(options)),
      options_(options) {
  options_.type = "sgd";
  set_schedule(Schedule(options_.schedule, options_.lr));
}

void SGD::update(const UpdateSpan& span, double lr, double weight_decay) {
  if (span.dtype == core::DType::f32) {
    sgd_update<float>(span, options_, lr, weight_decay);
  } else {
    sgd_update<double>(span, options_, lr, weight_decay);
  }
}

}  // namespace qkv::optim
