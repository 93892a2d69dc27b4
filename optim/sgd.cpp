// SGD: option checks and the fused per-parameter update (see sgd.hpp for the rule).
#include "optim/sgd.hpp"

#include <cmath>
#include <sstream>
#include <stdexcept>

#include "optim/option_check.hpp"

namespace qkv::optim {

namespace {

const SGDOptions& checked(const SGDOptions& o) {
  using detail::check_option;
  check_option(std::isfinite(o.lr) && o.lr >= 0, "sgd", "lr", o.lr, "a finite value >= 0");
  check_option(o.momentum >= 0 && o.momentum < 1, "sgd", "momentum", o.momentum, "[0, 1)");
  check_option(o.dampening >= 0 && o.dampening <= 1, "sgd", "dampening", o.dampening, "[0, 1]");
  check_option(std::isfinite(o.weight_decay) && o.weight_decay >= 0, "sgd", "weight_decay",
               o.weight_decay, "a finite value >= 0");
  if (o.nesterov && (o.momentum <= 0 || o.dampening != 0)) {
    std::ostringstream message;
    message << "sgd: option nesterov = true needs momentum > 0 and dampening = 0; got momentum = "
            << o.momentum << ", dampening = " << o.dampening;
    throw std::invalid_argument(message.str());
  }
  return o;
}

std::vector<std::string> buffers_for(const SGDOptions& o) {
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
void sgd_update(ParamSlot& slot, const SGDOptions& o, double lr, double weight_decay) {
  core::Tensor& param = slot.param.tensor;
  T* buffer = slot.buffers.empty() ? nullptr : slot.buffers[0].data<T>();
  sgd_update<T>(param.data<T>(), param.grad_buffer<T>(), buffer, param.numel(), T(lr),
                T(weight_decay), T(o.momentum), T(o.dampening), o.nesterov, slot.step == 1);
}

}  // namespace

SGD::SGD(const std::vector<core::NamedParameter>& params, const SGDOptions& options)
    : SGD(std::vector<ParamGroup>{ParamGroup{params, {}, {}}}, options) {}

SGD::SGD(std::vector<ParamGroup> groups, const SGDOptions& options)
    : Optimizer("sgd", std::move(groups), checked(options).lr, options.weight_decay,
                buffers_for(options)),
      options_(options) {}

void SGD::update(ParamSlot& slot, double lr, double weight_decay) {
  if (slot.param.tensor.dtype() == core::DType::f32) {
    sgd_update<float>(slot, options_, lr, weight_decay);
  } else {
    sgd_update<double>(slot, options_, lr, weight_decay);
  }
}

}  // namespace qkv::optim
