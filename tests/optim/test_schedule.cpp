// Learning-rate schedules: values at chosen steps against their closed forms, and the
// optimizer applying them by its step count.
#include <doctest/doctest.h>

#include <cmath>
#include <stdexcept>

#include "core/parameter.hpp"
#include "core/tensor.hpp"
#include "optim/schedule.hpp"
#include "optim/sgd.hpp"

using namespace qkv::optim;
using qkv::core::NamedParameter;
using qkv::core::Tensor;

namespace {
const double pi = 3.14159265358979323846;
}

TEST_CASE("schedule: constant is 1 after a linear warm-up") {
  SUBCASE("no warm-up") {
    Schedule schedule(ScheduleOptions{}, 0.5);
    CHECK(schedule.multiplier(0) == 1.0);
    CHECK(schedule.multiplier(12345) == 1.0);
    CHECK(schedule.lr(7) == 0.5);
  }
  SUBCASE("warm-up of 4 steps") {
    ScheduleOptions options;
    options.warmup_steps = 4;
    Schedule schedule(options, 2.0);
    CHECK(schedule.multiplier(0) == doctest::Approx(0.25));
    CHECK(schedule.multiplier(1) == doctest::Approx(0.5));
    CHECK(schedule.multiplier(3) == doctest::Approx(1.0));
    CHECK(schedule.multiplier(4) == 1.0);
    CHECK(schedule.lr(2) == doctest::Approx(1.5));
  }
}

TEST_CASE("schedule: cosine decays to min_lr") {
  ScheduleOptions options;
  options.type = ScheduleType::cosine;
  options.warmup_steps = 10;
  options.total_steps = 110;
  options.min_lr = 1e-4;
  const double base = 1e-3;
  Schedule schedule(options, base);
  auto closed_form = [&](double t) {  // t: steps after warm-up, of 100
    return 1e-4 + (base - 1e-4) * 0.5 * (1.0 + std::cos(pi * t / 100.0));
  };
  CHECK(schedule.lr(0) == doctest::Approx(base * 1.0 / 10.0));
  CHECK(schedule.lr(4) == doctest::Approx(base * 5.0 / 10.0));
  CHECK(schedule.lr(10) == doctest::Approx(base));
  CHECK(schedule.lr(35) == doctest::Approx(closed_form(25)));
  CHECK(schedule.lr(60) == doctest::Approx((base + 1e-4) / 2));
  CHECK(schedule.lr(60) == doctest::Approx(closed_form(50)));
  CHECK(schedule.lr(109) == doctest::Approx(closed_form(99)));
  CHECK(schedule.lr(110) == doctest::Approx(1e-4));
  CHECK(schedule.lr(5000) == doctest::Approx(1e-4));
  CHECK(schedule.multiplier(5000) == doctest::Approx(0.1));
}

TEST_CASE("schedule: step decay multiplies by gamma every step_size steps") {
  ScheduleOptions options;
  options.type = ScheduleType::step;
  options.step_size = 30;
  options.gamma = 0.5;
  SUBCASE("no warm-up") {
    Schedule schedule(options, 0.1);
    CHECK(schedule.lr(0) == doctest::Approx(0.1));
    CHECK(schedule.lr(29) == doctest::Approx(0.1));
    CHECK(schedule.lr(30) == doctest::Approx(0.05));
    CHECK(schedule.lr(89) == doctest::Approx(0.025));
    CHECK(schedule.lr(90) == doctest::Approx(0.0125));
  }
  SUBCASE("after a warm-up of 5 steps") {
    options.warmup_steps = 5;
    Schedule schedule(options, 0.1);
    CHECK(schedule.lr(0) == doctest::Approx(0.02));
    CHECK(schedule.lr(34) == doctest::Approx(0.1));
    CHECK(schedule.lr(35) == doctest::Approx(0.05));
  }
}

TEST_CASE("schedule: type names") {
  CHECK(schedule_type_from_name("cosine") == ScheduleType::cosine);
  CHECK(std::string(schedule_type_name(ScheduleType::step)) == "step");
  CHECK_THROWS_WITH_AS(schedule_type_from_name("cosin"),
                       doctest::Contains("unknown schedule type 'cosin' (known types: constant, "
                                         "cosine, step)"),
                       std::invalid_argument);
}

TEST_CASE("schedule: bad options name the option, value and range") {
  ScheduleOptions options;
  options.type = ScheduleType::cosine;
  options.warmup_steps = 100;
  options.total_steps = 100;
  CHECK_THROWS_WITH_AS(Schedule(options, 1e-3),
                       "schedule cosine: option warmup_steps = 100 is out of range; expected "
                       "fewer than total_steps (100): a cosine schedule decays after the warm-up",
                       std::invalid_argument);
  options.total_steps = 1000;
  options.min_lr = 0.1;
  CHECK_THROWS_WITH_AS(Schedule(options, 1e-3),
                       "schedule cosine: option min_lr = 0.1 is out of range; expected a rate in "
                       "[0, lr] (lr is 0.001)",
                       std::invalid_argument);
  options.min_lr = 1e-3;
  CHECK_NOTHROW(Schedule(options, 1e-3));  // the bounds are inclusive
  CHECK_THROWS_WITH_AS(Schedule(options, -1.0),
                       "schedule cosine: option lr = -1 is out of range; expected a finite value "
                       ">= 0",
                       std::invalid_argument);
  ScheduleOptions step;
  step.type = ScheduleType::step;
  step.step_size = 10;
  step.gamma = 1.5;
  CHECK_THROWS_WITH_AS(Schedule(step, 1e-3),
                       "schedule step: option gamma = 1.5 is out of range; expected a factor in "
                       "(0, 1]",
                       std::invalid_argument);
  step.gamma = 0.5;
  step.step_size = 0;
  CHECK_THROWS_WITH_AS(Schedule(step, 1e-3),
                       "schedule step: option step_size = 0 is out of range; expected a positive "
                       "number of steps",
                       std::invalid_argument);
}

TEST_CASE("schedule: the optimizer uses the factor of its step count") {
  Tensor w = Tensor::zeros({1}, qkv::core::DType::f64);
  w.requires_grad_();
  OptimizerOptions sgd;
  sgd.lr = 0.1;
  SGD optimizer(std::vector<NamedParameter>{{"w", w}}, sgd);
  ScheduleOptions options;
  options.type = ScheduleType::step;
  options.warmup_steps = 2;
  options.step_size = 1;
  options.gamma = 0.5;
  optimizer.set_schedule(Schedule(options, 0.1));
  // With a gradient of -1, each step adds the rate it used: two warm-up steps, then the
  // full rate, halved every step.
  const double expected_lrs[] = {0.05, 0.1, 0.1, 0.05, 0.025};
  double expected_w = 0.0;
  for (double expected_lr : expected_lrs) {
    CHECK(optimizer.lr() == doctest::Approx(expected_lr));
    optimizer.zero_grad();
    w.grad_buffer<double>()[0] = -1.0;
    optimizer.step();
    expected_w += expected_lr;
    CHECK(w.item() == doctest::Approx(expected_w));
  }
  CHECK(optimizer.step_count() == 5);
  CHECK(optimizer.base_lr() == 0.1);
}
