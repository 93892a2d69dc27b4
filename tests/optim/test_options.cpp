// Optimizer construction: the one options type (defaults, range checks), parameter groups,
// the factory.
#include <doctest/doctest.h>

#include <array>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/parameter.hpp"
#include "core/tensor.hpp"
#include "optim/adam.hpp"
#include "optim/factory.hpp"
#include "optim/options.hpp"
#include "optim/sgd.hpp"

using namespace qkv::optim;
using qkv::core::NamedParameter;
using qkv::core::ParamKind;
using qkv::core::Tensor;

namespace {

std::vector<NamedParameter> model_params() {
  return {{"tok_emb.weight", Tensor::zeros({10, 4}).requires_grad_(), ParamKind::embedding},
          {"fc.weight", Tensor::zeros({4, 4}).requires_grad_(), ParamKind::weight},
          {"fc.bias", Tensor::zeros({4}).requires_grad_(), ParamKind::bias},
          {"ln.weight", Tensor::ones({4}).requires_grad_(), ParamKind::norm}};
}

std::vector<std::string> names(const ParamGroup& group) {
  std::vector<std::string> out;
  for (const NamedParameter& p : group.params) out.push_back(p.name);
  return out;
}

}  // namespace

TEST_CASE("optimizer options: one set of defaults, the config's") {
  const OptimizerOptions options;
  CHECK(options.type == "adamw");
  CHECK(options.lr == 1e-3);
  CHECK(options.betas == std::array<double, 2>{0.9, 0.999});
  CHECK(options.eps == 1e-8);
  CHECK(options.momentum == 0.0);
  CHECK(options.dampening == 0.0);
  CHECK_FALSE(options.nesterov);
  CHECK(options.weight_decay == 0.0);
  CHECK_FALSE(options.decay_embeddings);
  CHECK(options.clip_norm == 0.0);
  CHECK(options.clip_value == 0.0);
  CHECK(options.schedule.type == ScheduleType::constant);
  CHECK(options.schedule.warmup_steps == 0);
  CHECK_NOTHROW(check_optimizer_options(options));
  // Every optimizer starts from them: AdamW's weight decay is 0 (not PyTorch's 1e-2).
  const auto params = model_params();
  CHECK(AdamW(params).weight_decay() == 0.0);
  CHECK(Adam(params).base_lr() == 1e-3);
  CHECK(SGD(params).base_lr() == 1e-3);
}

TEST_CASE("optimizer options: a constructor takes them as its own type, schedule included") {
  const auto params = model_params();
  OptimizerOptions options;  // type adamw
  options.lr = 0.5;
  options.momentum = 0.9;
  options.schedule.warmup_steps = 4;
  options.schedule.total_steps = 10;
  const SGD sgd(params, options);
  CHECK(sgd.options().type == "sgd");
  CHECK(sgd.options().momentum == 0.9);
  CHECK(sgd.buffer_names() == std::vector<std::string>{"momentum_buffer"});
  CHECK(sgd.lr() == doctest::Approx(0.5 / 4));  // the first warm-up step
  CHECK(sgd.schedule().options().total_steps == 10);
  options.momentum = 0.0;
  options.betas = {0.8, 0.9};
  CHECK(Adam(params, options).options().type == "adam");
  CHECK(AdamW(params, options).options().betas == std::array<double, 2>{0.8, 0.9});
}

TEST_CASE("optimizer options: bad values name the option, value and range") {
  const auto params = model_params();
  OptimizerOptions o;
  const auto fails = [&](const std::function<void()>& make, const std::string& message) {
    CHECK_THROWS_WITH_AS(make(), message.c_str(), std::invalid_argument);
    o = OptimizerOptions{};
  };
  const auto sgd = [&] { SGD(params, o); };
  const auto adam = [&] { Adam(params, o); };
  const auto adamw = [&] { AdamW(params, o); };
  o.lr = -0.1;
  fails(sgd, "sgd: option lr = -0.1 is out of range; expected a positive learning rate");
  o.lr = 0.0;
  fails(adam, "adam: option lr = 0 is out of range; expected a positive learning rate");
  o.momentum = 1.0;
  fails(sgd, "sgd: option momentum = 1 is out of range; expected a value in [0, 1)");
  o.dampening = 1.5;
  fails(sgd, "sgd: option dampening = 1.5 is out of range; expected a value in [0, 1]");
  o.nesterov = true;
  fails(sgd, "sgd: option nesterov = true is out of range; expected false unless momentum is "
             "positive");
  o.nesterov = true;
  o.momentum = 0.9;
  o.dampening = 0.1;
  fails(sgd, "sgd: option nesterov = true is out of range; expected false unless dampening is 0");
  o.betas = {1.0, 0.999};
  fails(adam, "adam: option betas = [1, 0.999] is out of range; expected values in [0, 1)");
  o.betas = {0.9, -0.5};
  fails(adamw, "adamw: option betas = [0.9, -0.5] is out of range; expected values in [0, 1)");
  o.eps = -1e-8;
  fails(adamw, "adamw: option eps = -1e-08 is out of range; expected a positive number (0 makes "
               "0/0 where a gradient is 0)");
  o.eps = 0;  // made NaN weights at the first step (#12)
  fails(adam, "adam: option eps = 0 is out of range; expected a positive number (0 makes 0/0 "
              "where a gradient is 0)");
  o.weight_decay = -0.1;
  fails(adamw, "adamw: option weight_decay = -0.1 is out of range; expected a non-negative "
               "number");
  o.clip_norm = -1.0;
  fails(sgd, "sgd: option clip_norm = -1 is out of range; expected a non-negative norm (0: off)");
  o.clip_value = -2.0;
  fails(adam, "adam: option clip_value = -2 is out of range; expected a non-negative value "
              "(0: off)");
  o.schedule.warmup_steps = 10;
  o.schedule.total_steps = 5;
  fails(adamw, "adamw: option schedule.warmup_steps = 10 is out of range; expected at most "
               "schedule.total_steps (5)");
  o.schedule.type = ScheduleType::cosine;
  o.schedule.total_steps = 100;
  o.schedule.min_lr = 0.1;
  fails(adamw, "adamw: option schedule.min_lr = 0.1 is out of range; expected a rate in [0, lr] "
               "(lr is 0.001)");
  o.schedule.type = ScheduleType::step;
  fails(sgd, "sgd: option schedule.step_size = 0 is out of range; expected a positive number of "
             "steps");
  std::vector<ParamGroup> groups = {ParamGroup{params, -2.0, {}}};
  CHECK_THROWS_WITH_AS(Adam(groups, OptimizerOptions()),
                       doctest::Contains("adam parameter group 0: option lr = -2"),
                       std::invalid_argument);
}

TEST_CASE("optimizer options: a field of another type must keep its default") {
  const auto params = model_params();
  OptimizerOptions momentum;
  momentum.momentum = 0.9;
  CHECK_THROWS_WITH_AS(Adam(params, momentum),
                       "adam: option momentum = 0.9 is out of range; expected 0 (momentum "
                       "applies to sgd only)",
                       std::invalid_argument);
  OptimizerOptions nesterov;
  nesterov.nesterov = true;
  CHECK_THROWS_WITH_AS(AdamW(params, nesterov),
                       "adamw: option nesterov = true is out of range; expected false (nesterov "
                       "applies to sgd only)",
                       std::invalid_argument);
  OptimizerOptions betas;
  betas.betas = {0.8, 0.999};
  CHECK_THROWS_WITH_AS(SGD(params, betas),
                       "sgd: option betas = [0.8, 0.999] is out of range; expected [0.9, 0.999] "
                       "(betas applies to adam, adamw only)",
                       std::invalid_argument);
  OptimizerOptions eps;
  eps.eps = 1e-6;
  CHECK_THROWS_WITH_AS(SGD(params, eps), doctest::Contains("option eps = 1e-06"),
                       std::invalid_argument);
  OptimizerOptions dampening;
  dampening.dampening = 0.5;
  CHECK_THROWS_WITH_AS(AdamW(params, dampening), doctest::Contains("option dampening = 0.5"),
                       std::invalid_argument);
}

TEST_CASE("optimizer: bad parameter lists are refused") {
  CHECK_THROWS_WITH_AS(Adam(std::vector<NamedParameter>{}),
                       doctest::Contains("adam: got no parameters to optimize"),
                       std::invalid_argument);
  auto params = model_params();
  params.push_back({"fc.weight", Tensor::zeros({2}).requires_grad_()});
  CHECK_THROWS_WITH_AS(SGD(params, OptimizerOptions()),
                       doctest::Contains("sgd: parameter 'fc.weight' is given more than once"),
                       std::invalid_argument);
  params = model_params();
  params.push_back({"fc.weight_again", params[1].tensor});
  CHECK_THROWS_WITH_AS(SGD(params, OptimizerOptions()),
                       doctest::Contains("parameters 'fc.weight' and 'fc.weight_again' are the "
                                         "same tensor"),
                       std::invalid_argument);
  params = model_params();
  params.push_back({"nothing", Tensor()});
  CHECK_THROWS_WITH_AS(SGD(params, OptimizerOptions()),
                       doctest::Contains("parameter 'nothing' is an undefined tensor"),
                       std::invalid_argument);
}

TEST_CASE("split_decay_groups: decay on weight matrices only, embeddings by choice") {
  const auto params = model_params();
  SUBCASE("default") {
    const auto groups = split_decay_groups(params);
    REQUIRE(groups.size() == 2);
    CHECK(names(groups[0]) == std::vector<std::string>{"fc.weight"});
    CHECK_FALSE(groups[0].weight_decay.has_value());
    CHECK(names(groups[1]) ==
          std::vector<std::string>{"tok_emb.weight", "fc.bias", "ln.weight"});
    CHECK(groups[1].weight_decay == 0.0);
  }
  SUBCASE("decay_embeddings") {
    const auto groups = split_decay_groups(params, true);
    REQUIRE(groups.size() == 2);
    CHECK(names(groups[0]) == std::vector<std::string>{"tok_emb.weight", "fc.weight"});
  }
  SUBCASE("an empty group is left out") {
    const auto groups = split_decay_groups({params[2], params[3]});
    REQUIRE(groups.size() == 1);
    CHECK(groups[0].weight_decay == 0.0);
  }
}

TEST_CASE("make_optimizer: builds the named type with groups and schedule") {
  const auto params = model_params();
  OptimizerOptions options;
  options.lr = 3e-4;
  options.weight_decay = 0.1;
  options.betas = {0.9, 0.95};
  options.schedule.type = ScheduleType::cosine;
  options.schedule.warmup_steps = 10;
  options.schedule.total_steps = 100;
  options.schedule.min_lr = 1e-5;
  auto optimizer = make_optimizer(options, params);  // adamw, the default type
  CHECK(optimizer->name() == "adamw");
  REQUIRE(optimizer->group_count() == 2);
  CHECK(optimizer->weight_decay(0) == 0.1);
  CHECK(optimizer->weight_decay(1) == 0.0);
  CHECK(optimizer->base_lr(1) == 3e-4);
  CHECK(optimizer->lr() == doctest::Approx(3e-5));  // first warm-up step: 1/10
  CHECK(dynamic_cast<AdamW&>(*optimizer).options().betas[1] == 0.95);
  CHECK(optimizer->parameters().size() == 4);

  options.schedule = ScheduleOptions{};
  options.type = "adam";
  CHECK(make_optimizer(options, params)->name() == "adam");
  options.type = "sgd";
  options.betas = OptimizerOptions().betas;
  options.momentum = 0.9;
  options.decay_embeddings = true;
  const auto sgd = make_optimizer(options, params);
  CHECK(dynamic_cast<SGD&>(*sgd).options().momentum == 0.9);
  CHECK(sgd->parameters()[0].name == "tok_emb.weight");  // in the decay group now
}

TEST_CASE("make_optimizer: unknown types and unused options are errors") {
  const auto params = model_params();
  OptimizerOptions adan;
  adan.type = "adan";
  CHECK_THROWS_WITH_AS(make_optimizer(adan, params),
                       "unknown optimizer type 'adan' (known types: sgd, adam, adamw)",
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(check_optimizer_options(adan),
                       "unknown optimizer type 'adan' (known types: sgd, adam, adamw)",
                       std::invalid_argument);
  OptimizerOptions momentum;
  momentum.momentum = 0.9;
  CHECK_THROWS_WITH_AS(make_optimizer(momentum, params),
                       doctest::Contains("adamw: option momentum = 0.9 is out of range; "
                                         "expected 0 (momentum applies to sgd only)"),
                       std::invalid_argument);
  OptimizerOptions betas;
  betas.type = "sgd";
  betas.betas = {0.8, 0.999};
  CHECK_THROWS_WITH_AS(make_optimizer(betas, params),
                       doctest::Contains("sgd: option betas = [0.8, 0.999]"),
                       std::invalid_argument);
  OptimizerOptions bad_lr;
  bad_lr.type = "adam";
  bad_lr.lr = -1.0;
  CHECK_THROWS_WITH_AS(make_optimizer(bad_lr, params),
                       doctest::Contains("adam: option lr = -1 is out of range"),
                       std::invalid_argument);
  CHECK(optimizer_types() == std::vector<std::string>{"sgd", "adam", "adamw"});
}
