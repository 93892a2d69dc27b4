// Learning-rate schedules: closed forms of the step count (see schedule.hpp).
#include "optim/schedule.hpp"

#include <cmath>
#include <sstream>
#include <stdexcept>

#include "optim/option_check.hpp"

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

Schedule::Schedule(const ScheduleOptions& options, double base_lr)
    : options_(options), base_lr_(base_lr) {
  using detail::check_option;
  const std::string who = std::string("schedule ") + schedule_type_name(options.type);
  check_option(std::isfinite(base_lr) && base_lr >= 0, who, "lr", base_lr, "a finite value >= 0");
  if (options.type == ScheduleType::cosine) {
    check_option(options.total_steps > options.warmup_steps, who, "total_steps",
                 static_cast<double>(options.total_steps),
                 "a step count greater than warmup_steps");
    check_option(options.min_lr >= 0 && options.min_lr <= base_lr, who, "min_lr", options.min_lr,
                 "[0, lr]");
    floor_ = base_lr > 0 ? options.min_lr / base_lr : 0.0;
  }
  if (options.type == ScheduleType::step) {
    check_option(options.step_size > 0, who, "step_size",
                 static_cast<double>(options.step_size), "a step count > 0");
    check_option(options.gamma > 0 && options.gamma <= 1, who, "gamma", options.gamma, "(0, 1]");
  }
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
