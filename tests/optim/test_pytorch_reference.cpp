// SGD, Adam and AdamW against PyTorch: parameters after 5 steps on a fixed float64 problem
// (tests/fixtures/optim/optim_reference.json, made by make_optim_fixture.py there).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/parameter.hpp"
#include "core/tensor.hpp"
#include "optim/adam.hpp"
#include "optim/sgd.hpp"

using qkv::core::NamedParameter;
using qkv::core::ParamKind;
using qkv::core::Shape;
using qkv::core::Tensor;
using namespace qkv::optim;
using nlohmann::json;

namespace {

json load_reference() {
  const std::string path = std::string(QKV_SOURCE_DIR) + "/tests/fixtures/optim/optim_reference.json";
  std::ifstream in(path);
  REQUIRE_MESSAGE(in.good(), "cannot open " << path);
  return json::parse(in);
}

ParamKind kind_from(const std::string& kind) {
  if (kind == "weight") return ParamKind::weight;
  if (kind == "bias") return ParamKind::bias;
  if (kind == "norm") return ParamKind::norm;
  return ParamKind::embedding;
}

// The fixture's problem: fresh float64 parameters at their initial values, and targets.
struct Problem {
  std::map<std::string, NamedParameter> params;
  std::map<std::string, std::vector<double>> targets;
  std::vector<std::string> order;
};

Problem make_problem(const json& reference) {
  Problem problem;
  for (const json& p : reference["params"]) {
    const std::string name = p["name"];
    const Shape shape = p["shape"].get<Shape>();
    Tensor t = Tensor::from_vector(p["initial"].get<std::vector<double>>(), shape);
    t.requires_grad_();
    problem.params[name] = NamedParameter{name, t, kind_from(p["kind"])};
    problem.targets[name] = p["target"].get<std::vector<double>>();
    problem.order.push_back(name);
  }
  return problem;
}

std::vector<ParamGroup> groups_for(const json& c, const Problem& problem) {
  std::vector<ParamGroup> groups;
  if (!c.contains("groups")) {
    ParamGroup all;
    for (const std::string& name : problem.order) all.params.push_back(problem.params.at(name));
    groups.push_back(all);
    return groups;
  }
  for (const json& g : c["groups"]) {
    ParamGroup group;
    for (const json& name : g["params"]) group.params.push_back(problem.params.at(name));
    if (g.contains("lr")) group.lr = g["lr"].get<double>();
    if (g.contains("weight_decay")) group.weight_decay = g["weight_decay"].get<double>();
    groups.push_back(group);
  }
  return groups;
}

std::unique_ptr<Optimizer> make_case_optimizer(const json& c, const Problem& problem) {
  const json& o = c["options"];
  const std::string type = c["type"];
  std::vector<ParamGroup> groups = groups_for(c, problem);
  OptimizerOptions options;
  options.lr = o["lr"];
  options.weight_decay = o.value("weight_decay", 0.0);
  if (type == "sgd") {
    options.momentum = o.value("momentum", 0.0);
    options.dampening = o.value("dampening", 0.0);
    options.nesterov = o.value("nesterov", false);
    return std::make_unique<SGD>(groups, options);
  }
  options.betas = {o.value("beta1", 0.9), o.value("beta2", 0.999)};
  options.eps = o.value("eps", 1e-8);
  if (type == "adam") return std::make_unique<Adam>(groups, options);
  REQUIRE(type == "adamw");
  REQUIRE(o.contains("weight_decay"));  // the fixture states AdamW's decay
  return std::make_unique<AdamW>(groups, options);
}

// Replays one case: each step, every parameter but "frozen" (and those the case skips on
// that step) gets the gradient p*p*p - target, as in the fixture script.
void replay_and_compare(const json& reference, const json& c) {
  Problem problem = make_problem(reference);
  std::unique_ptr<Optimizer> optimizer = make_case_optimizer(c, problem);
  const int steps = reference["steps"];
  for (int step = 0; step < steps; ++step) {
    optimizer->zero_grad();
    for (const std::string& name : problem.order) {
      if (name == "frozen") continue;
      if (c.contains("skip") && c["skip"].contains(name)) {
        const std::vector<int> skipped = c["skip"][name];
        if (std::find(skipped.begin(), skipped.end(), step) != skipped.end()) continue;
      }
      Tensor& p = problem.params.at(name).tensor;
      const double* value = p.data<double>();
      double* grad = p.grad_buffer<double>();
      const std::vector<double>& target = problem.targets.at(name);
      for (std::size_t i = 0; i < p.numel(); ++i) {
        grad[i] = value[i] * value[i] * value[i] - target[i];
      }
    }
    optimizer->step();
  }
  for (const std::string& name : problem.order) {
    const std::vector<double> expected = c["final"][name];
    const std::vector<double> got = problem.params.at(name).tensor.to_vector();
    REQUIRE(got.size() == expected.size());
    for (std::size_t i = 0; i < got.size(); ++i) {
      INFO(c["name"].get<std::string>(), " parameter ", name, " element ", i, ": qkv ", got[i],
           ", pytorch ", expected[i]);
      CHECK(std::abs(got[i] - expected[i]) <= 1e-6 * std::abs(expected[i]) + 1e-12);
    }
  }
}

void run_cases_of_type(const std::string& type) {
  const json reference = load_reference();
  std::size_t count = 0;
  for (const json& c : reference["cases"]) {
    if (c["type"] != type) continue;
    ++count;
    SUBCASE(c["name"].get<std::string>().c_str()) { replay_and_compare(reference, c); }
  }
  CHECK(count >= 3);
}

}  // namespace

TEST_CASE("sgd: matches pytorch after 5 steps") { run_cases_of_type("sgd"); }

TEST_CASE("adam: matches pytorch after 5 steps") { run_cases_of_type("adam"); }

TEST_CASE("adamw: matches pytorch after 5 steps") { run_cases_of_type("adamw"); }
