// Learning-rate schedules: a pure function from the optimizer's step count to a factor on
// each parameter group's learning rate (as torch.optim.lr_scheduler.LambdaLR does).
//
// Every schedule may start with a linear warm-up: for step < warmup_steps the factor is
// (step + 1) / warmup_steps, so the first update already moves (a factor of 0 would waste
// a step) and the last warm-up step reaches the full rate. After the warm-up, with
// t = step - warmup_steps:
//   constant: 1
//   cosine:   floor + (1 - floor) * (1 + cos(pi * t / T)) / 2 for t < T, then floor,
//             where T = total_steps - warmup_steps and floor = min_lr / base_lr
//   step:     gamma ^ floor(t / step_size)
// The position in the schedule is the optimizer's step count, which is part of the
// optimizer's exported state, so a resumed run continues the schedule exactly.
//
//   ScheduleOptions options;
//   options.type = schedule_type_from_name("cosine");
//   options.warmup_steps = 100;
//   options.total_steps = 5000;   // usually the run's number of training steps
//   options.min_lr = 1e-5;
//   Schedule schedule(options, 3e-4);  // 3e-4: the base learning rate
//   double lr = schedule.lr(250);      // == 3e-4 * schedule.multiplier(250)
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace qkv::optim {

enum class ScheduleType { constant, cosine, step };

// "constant", "cosine", "step"; an unknown name throws std::invalid_argument listing them.
ScheduleType schedule_type_from_name(const std::string& name);
const char* schedule_type_name(ScheduleType type);
const std::vector<std::string>& schedule_type_names();

struct ScheduleOptions {
  ScheduleType type = ScheduleType::constant;
  std::size_t warmup_steps = 0;  // 0: no warm-up
  std::size_t total_steps = 0;   // cosine: the step where min_lr is reached (warm-up included);
                                 // in OptimizerOptions, the run's length
  double min_lr = 0.0;           // cosine: the floor, an absolute rate in [0, base_lr]
  std::size_t step_size = 0;     // step: multiply by gamma every step_size steps
  double gamma = 0.1;            // step: in (0, 1]
};

class Schedule {
 public:
  Schedule() = default;  // constant, no warm-up: the factor is always 1
  // Validates the options (std::invalid_argument naming the option, its value and the
  // expected range: a cosine's warm-up shorter than total_steps, min_lr in [0, base_lr],
  // step_size > 0, gamma in (0, 1]). base_lr turns the absolute min_lr into a factor.
  Schedule(const ScheduleOptions& options, double base_lr);

  double multiplier(std::size_t step) const;
  double lr(std::size_t step) const { return base_lr_ * multiplier(step); }

  const ScheduleOptions& options() const { return options_; }
  double base_lr() const { return base_lr_; }

 private:
  ScheduleOptions options_;
  double base_lr_ = 1.0;
  double floor_ = 0.0;  // min_lr / base_lr
};

}  // namespace qkv::optim
