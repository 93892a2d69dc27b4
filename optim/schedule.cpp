// Learning-rate schedules: closed forms of the step count (see schedule.hpp).
#include "optim/schedule.hpp"

#include <cmath>
#include <sstream>
#include <stdexcept>

#include "optim/option_check.hpp"
#include "strict_yaml/config_node.hpp"

namespace qkv::optim {

namespace {
constexpr double pi = 3.14159265358979323846;
}  // namespace

const std::vector<std::string>& schedule_type_names() {
  static const std::vector<std::string> names = {"constant", "cosine", "step"};
  return names;
}

ScheduleType schedule_type_from_name(const std::string& name) {
  if (name == "constant") return ScheduleType::constant;
  if (name == "cosine") return ScheduleType::cosine;
  if (name == "step") return ScheduleType::step;
  std::ostringstream message;
  message << "unknown schedule type '" << name << "' (known types: constant, cosine, step)";
  throw std::invalid_argument(message.str());
}

const char* schedule_type_name(ScheduleType type) {
  switch (type) {
    case ScheduleType::constant: return "constant";
    case ScheduleType::cosine: return "cosine";
    case ScheduleType::step: return "step";
  }
  return "?";
}

namespace detail {

std::optional<OptionError> find_schedule_error(const ScheduleOptions& options, double base_lr,
                                               const std::string& lr_name,
                                               const std::string& total_steps_name) {
  if (!(std::isfinite(base_lr) && base_lr >= 0)) {
    return OptionError{"lr", "a finite value >= 0", format_number(base_lr)};
  }
  if (options.type == ScheduleType::cosine) {
    if (options.warmup_steps >= options.total_steps) {
      return OptionError{"warmup_steps",
                         "fewer than " + total_steps_name + " (" +
                             std::to_string(options.total_steps) +
                             "): a cosine schedule decays after the warm-up",
                         std::to_string(options.warmup_steps)};
    }
    if (!(options.min_lr >= 0 && options.min_lr <= base_lr)) {
      return OptionError{"min_lr",
                         "a rate in [0, " + lr_name + "] (" + lr_name + " is " +
                             format_number(base_lr) + ")",
                         format_number(options.min_lr)};
    }
  }
  if (options.type == ScheduleType::step) {
    if (options.step_size == 0) {
      return OptionError{"step_size", "a positive number of steps", "0"};
    }
    if (!(options.gamma > 0 && options.gamma <= 1)) {
      return OptionError{"gamma", "a factor in (0, 1]", format_number(options.gamma)};
    }
  }
  return std::nullopt;
}

}  // namespace detail

Schedule::Schedule(const ScheduleOptions& options, double base_lr)
    : options_(options), base_lr_(base_lr) {
  const std::optional<detail::OptionError> error =
      detail::find_schedule_error(options, base_lr, "lr", "total_steps");
  if (error) {
    detail::throw_option_error(std::string("schedule ") + schedule_type_name(options.type),
                               *error);
  }
  if (options.type == ScheduleType::cosine) floor_ = base_lr > 0 ? options.min_lr / base_lr : 0.0;
}

double Schedule::multiplier(std::size_t step) const {
  const std::size_t warmup = options_.warmup_steps;
  if (step < warmup) return static_cast<double>(step + 1) / static_cast<double>(warmup);
  const std::size_t t = step - warmup;
  switch (options_.type) {
    case ScheduleType::constant:
      return 1.0;
    case ScheduleType::cosine: {
      const std::size_t decay_steps = options_.total_steps - warmup;
      if (t >= decay_steps) return floor_;
      const double progress = static_cast<double>(t) / static_cast<double>(decay_steps);
      return floor_ + (1.0 - floor_) * 0.5 * (1.0 + std::cos(pi * progress));
    }
    case ScheduleType::step:
      return std::pow(options_.gamma, static_cast<double>(t / options_.step_size));
  }
  return 1.0;
}

}  // namespace qkv::optim
