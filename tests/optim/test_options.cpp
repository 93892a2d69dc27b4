// Optimizer construction: option checks, parameter groups, the factory.
#include <doctest/doctest.h>

#include <stdexcept>
#include <vector>

#include "core/parameter.hpp"
#include "core/tensor.hpp"
#include "optim/adam.hpp"
#include "optim/factory.hpp"
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

TEST_CASE("optimizer options: bad values name the option, value and range") {
  const auto params = model_params();
  CHECK_THROWS_WITH_AS(SGD(params, SGDOptions{-0.1}),
                       doctest::Contains("sgd: option lr = -0.1 is out of range; expected a "
                                         "finite value >= 0"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(SGD(params, SGDOptions{0.1, 1.0}),
                       doctest::Contains("sgd: option momentum = 1 is out of range; expected [0, 1)"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(SGD(params, SGDOptions{0.1, 0.0, 0.0, 0.0, true}),
                       doctest::Contains("sgd: option nesterov = true needs momentum > 0 and "
                                         "dampening = 0; got momentum = 0, dampening = 0"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(Adam(params, AdamOptions{1e-3, 1.0}),
                       doctest::Contains("adam: option beta1 = 1 is out of range; expected [0, 1)"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(Adam(params, AdamOptions{1e-3, 0.9, -0.5}),
                       doctest::Contains("adam: option beta2 = -0.5 is out of range"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(AdamW(params, AdamWOptions{1e-3, 0.9, 0.999, -1e-8}),
                       doctest::Contains("adamw: option eps = -1e-08 is out of range"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(AdamW(params, AdamWOptions{1e-3, 0.9, 0.999, 1e-8, -0.1}),
                       doctest::Contains("adamw: option weight_decay = -0.1 is out of range; "
                                         "expected a finite value >= 0"),
                       std::invalid_argument);
  std::vector<ParamGroup> groups = {ParamGroup{params, -2.0, {}}};
  CHECK_THROWS_WITH_AS(Adam(groups, AdamOptions{}),
                       doctest::Contains("adam parameter group 0: option lr = -2"),
                       std::invalid_argument);
}

TEST_CASE("optimizer: bad parameter lists are refused") {
  CHECK_THROWS_WITH_AS(Adam(std::vector<NamedParameter>{}),
                       doctest::Contains("adam: got no parameters to optimize"),
                       std::invalid_argument);
  auto params = model_params();
  params.push_back({"fc.weight", Tensor::zeros({2}).requires_grad_()});
  CHECK_THROWS_WITH_AS(SGD(params, SGDOptions{}),
                       doctest::Contains("sgd: parameter 'fc.weight' is given more than once"),
                       std::invalid_argument);
  params = model_params();
  params.push_back({"fc.weight_again", params[1].tensor});
  CHECK_THROWS_WITH_AS(SGD(params, SGDOptions{}),
                       doctest::Contains("parameters 'fc.weight' and 'fc.weight_again' are the "
                                         "same tensor"),
                       std::invalid_argument);
  params = model_params();
  params.push_back({"nothing", Tensor()});
  CHECK_THROWS_WITH_AS(SGD(params, SGDOptions{}),
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
  options.beta2 = 0.95;
  options.schedule.type = ScheduleType::cosine;
  options.schedule.warmup_steps = 10;
  options.schedule.total_steps = 100;
  options.schedule.min_lr = 1e-5;
  auto optimizer = make_optimizer("adamw", params, options);
  CHECK(optimizer->name() == "adamw");
  REQUIRE(optimizer->group_count() == 2);
  CHECK(optimizer->weight_decay(0) == 0.1);
  CHECK(optimizer->weight_decay(1) == 0.0);
  CHECK(optimizer->base_lr(1) == 3e-4);
  CHECK(optimizer->lr() == doctest::Approx(3e-5));  // first warm-up step: 1/10
  CHECK(dynamic_cast<AdamW&>(*optimizer).options().beta2 == 0.95);
  CHECK(optimizer->parameters().size() == 4);

  options.schedule = ScheduleOptions{};
  CHECK(make_optimizer("adam", params, options)->name() == "adam");
  options.beta2 = 0.999;
  options.momentum = 0.9;
  CHECK(dynamic_cast<SGD&>(*make_optimizer("sgd", params, options)).options().momentum == 0.9);
}

TEST_CASE("make_optimizer: unknown types and unused options are errors") {
  const auto params = model_params();
  CHECK_THROWS_WITH_AS(make_optimizer("adan", params, OptimizerOptions{}),
                       doctest::Contains("unknown optimizer type 'adan' (known types: sgd, "
                                         "adam, adamw)"),
                       std::invalid_argument);
  OptimizerOptions momentum;
  momentum.momentum = 0.9;
  CHECK_THROWS_WITH_AS(make_optimizer("adamw", params, momentum),
                       doctest::Contains("optimizer adamw does not use option momentum (it "
                                         "applies to sgd only)"),
                       std::invalid_argument);
  OptimizerOptions betas;
  betas.beta1 = 0.8;
  CHECK_THROWS_WITH_AS(make_optimizer("sgd", params, betas),
                       doctest::Contains("optimizer sgd does not use option beta1"),
                       std::invalid_argument);
  OptimizerOptions bad_lr;
  bad_lr.lr = -1.0;
  CHECK_THROWS_WITH_AS(make_optimizer("adam", params, bad_lr),
                       doctest::Contains("adam: option lr = -1 is out of range"),
                       std::invalid_argument);
  CHECK(optimizer_types() == std::vector<std::string>{"sgd", "adam", "adamw"});
}
