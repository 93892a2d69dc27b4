// The optim: section: defaults, the written form, read-write-read round trips, and errors
// that name the key with its file and line.
#include <doctest/doctest.h>

#include <stdexcept>
#include <string>

#include "optim/options.hpp"
#include "strict_yaml/config_node.hpp"
#include "strict_yaml/config_writer.hpp"

using namespace qkv::optim;
using qkv::ConfigError;
using qkv::ConfigNode;
using qkv::ConfigWriter;

namespace {

// The optim: section of `yaml` for a run of `steps` steps; every key must be known.
OptimizerOptions read(const std::string& yaml, std::size_t steps = 100) {
  const ConfigNode root = ConfigNode::parse(yaml, "test.yaml");
  const OptimizerOptions options = read_optimizer_options(root.child("optim"), steps);
  root.finish();
  return options;
}

std::string write(const OptimizerOptions& options) {
  ConfigWriter out;
  write_optimizer_options(options, out.child("optim"));
  return out.str();
}

void check_same(const OptimizerOptions& a, const OptimizerOptions& b) {
  CHECK(a.type == b.type);
  CHECK(a.lr == b.lr);
  CHECK(a.betas == b.betas);
  CHECK(a.eps == b.eps);
  CHECK(a.momentum == b.momentum);
  CHECK(a.dampening == b.dampening);
  CHECK(a.nesterov == b.nesterov);
  CHECK(a.weight_decay == b.weight_decay);
  CHECK(a.decay_embeddings == b.decay_embeddings);
  CHECK(a.clip_norm == b.clip_norm);
  CHECK(a.clip_value == b.clip_value);
  CHECK(a.schedule.type == b.schedule.type);
  CHECK(a.schedule.warmup_steps == b.schedule.warmup_steps);
  CHECK(a.schedule.total_steps == b.schedule.total_steps);
  CHECK(a.schedule.min_lr == b.schedule.min_lr);
  CHECK(a.schedule.step_size == b.schedule.step_size);
  CHECK(a.schedule.gamma == b.schedule.gamma);
}

void fails(const std::string& yaml, const std::string& message) {
  CAPTURE(yaml);
  CHECK_THROWS_WITH_AS(read(yaml), doctest::Contains(message.c_str()), ConfigError);
}

}  // namespace

TEST_CASE("optim section: an empty section is the options' defaults") {
  OptimizerOptions expected;
  expected.schedule.total_steps = 250;  // the run's length
  check_same(read("", 250), expected);
  check_same(read("optim: {}\n", 250), expected);
  CHECK(write(read("")) ==
        "optim:\n"
        "  type: adamw\n"
        "  lr: 0.001\n"
        "  betas: [0.9, 0.999]\n"
        "  eps: 1e-08\n"
        "  weight_decay: 0\n"
        "  decay_embeddings: false\n"
        "  clip_norm: 0\n"
        "  clip_value: 0\n"
        "  schedule:\n"
        "    type: constant\n"
        "    warmup_steps: 0\n");
}

TEST_CASE("optim section: read, write and read again gives the same options") {
  for (const std::string yaml : {
           "optim: {type: sgd, lr: 0.1, momentum: 0.9, nesterov: true, weight_decay: 0.01, "
           "clip_value: 0.5, schedule: {type: step, warmup_steps: 5, step_size: 30, gamma: 0.5}}\n",
           "optim: {type: adamw, lr: 3e-4, betas: [0.9, 0.95], eps: 1e-9, weight_decay: 0.1, "
           "decay_embeddings: true, clip_norm: 1.0, "
           "schedule: {type: cosine, warmup_steps: 10, min_lr: 1e-5}}\n",
           "optim: {type: adam, lr: 0.003, schedule: {type: step, step_size: 7}}\n",
       }) {
    CAPTURE(yaml);
    const OptimizerOptions first = read(yaml);
    const std::string text = write(first);
    const OptimizerOptions again = read(text);
    check_same(first, again);
    CHECK(write(again) == text);
  }
  const OptimizerOptions sgd = read("optim: {type: sgd, lr: 0.1, momentum: 0.9}\n");
  CHECK(sgd.momentum == 0.9);
  CHECK(sgd.betas == OptimizerOptions().betas);
  const std::string text = write(sgd);
  CHECK(text.find("momentum: 0.9") != std::string::npos);
  CHECK(text.find("nesterov: false") != std::string::npos);
  CHECK(text.find("betas") == std::string::npos);  // adam's keys are not sgd's
  CHECK(write(read("optim: {betas: [0.9, 0.95]}\n")).find("betas: [0.9, 0.95]\n") !=
        std::string::npos);
}

TEST_CASE("optim section: out-of-range values name the key, file and line") {
  CHECK_THROWS_WITH_AS(read("optim:\n  lr: -0.1\n"),
                       "test.yaml:2:7: optim.lr: expected a positive learning rate, found -0.1",
                       ConfigError);
  fails("optim: {lr: 0}\n", "optim.lr: expected a positive learning rate, found 0");
  fails("optim: {betas: [0.9, 1.5]}\n", "optim.betas: expected values in [0, 1), found");
  fails("optim: {betas: [0.9, 0.95, 0.99]}\n", "optim.betas: expected two values [beta1, beta2]");
  fails("optim: {eps: -1}\n", "optim.eps: expected a positive number (0 makes 0/0 where a "
                              "gradient is 0), found -1");
  fails("optim: {eps: 0}\n", "optim.eps: expected a positive number");
  fails("optim: {type: sgd, momentum: 1}\n", "optim.momentum: expected a value in [0, 1), found 1");
  fails("optim: {type: sgd, nesterov: true}\n",
        "optim.nesterov: expected false unless optim.momentum is positive, found true");
  fails("optim: {weight_decay: -0.1}\n",
        "optim.weight_decay: expected a non-negative number, found -0.1");
  fails("optim: {clip_norm: -1}\n", "optim.clip_norm: expected a non-negative norm (0: off)");
  fails("optim: {clip_value: -1}\n", "optim.clip_value: expected a non-negative value (0: off)");
  fails("optim: {schedule: {warmup_steps: 200}}\n",
        "optim.schedule.warmup_steps: expected at most train.steps (100), found 200");
  fails("optim: {schedule: {type: cosine, warmup_steps: 100}}\n",
        "optim.schedule.warmup_steps: expected fewer than train.steps (100): a cosine schedule "
        "decays after the warm-up, found 100");
  fails("optim: {lr: 0.001, schedule: {type: cosine, min_lr: 0.1}}\n",
        "optim.schedule.min_lr: expected a rate in [0, optim.lr] (optim.lr is 0.001), found 0.1");
  fails("optim: {schedule: {type: step}}\n", "optim.schedule.step_size: required key is missing");
  fails("optim: {schedule: {type: step, step_size: 0}}\n",
        "optim.schedule.step_size: expected a positive number of steps, found 0");
  fails("optim: {schedule: {type: step, step_size: 3, gamma: 1.5}}\n",
        "optim.schedule.gamma: expected a factor in (0, 1], found 1.5");
  fails("optim: {type: adan}\n", "optim.type: expected one of sgd, adam, adamw, found adan");
  fails("optim: {lr: fast}\n", "optim.lr: expected a finite number, found fast");
}

TEST_CASE("optim section: keys of another type say where they belong") {
  CHECK_THROWS_WITH_AS(read("optim:\n  type: sgd\n  betas: [0.9, 0.95]\n"),
                       "test.yaml:3:10: optim.betas: applies to adam, adamw only; optim.type is "
                       "sgd",
                       ConfigError);
  fails("optim: {type: sgd, eps: 1e-6}\n", "optim.eps: applies to adam, adamw only");
  fails("optim: {type: adam, momentum: 0.9}\n",
        "optim.momentum: applies to sgd only; optim.type is adam");
  fails("optim: {nesterov: true}\n", "optim.nesterov: applies to sgd only; optim.type is adamw");
  fails("optim: {schedule: {type: constant, gamma: 0.5}}\n",
        "optim.schedule.gamma: applies to step only; optim.schedule.type is constant");
  fails("optim: {schedule: {type: step, step_size: 3, min_lr: 0}}\n",
        "optim.schedule.min_lr: applies to cosine only; optim.schedule.type is step");
  // dampening is set in code only: in a config it is an unknown key.
  fails("optim: {type: sgd, dampening: 0.5}\n", "unknown key 'optim.dampening'");
}

TEST_CASE("optim section: options a config cannot hold are not written") {
  OptimizerOptions options;
  options.type = "sgd";
  options.momentum = 0.9;
  options.dampening = 0.3;
  CHECK_THROWS_WITH_AS(write(options),
                       "optim: dampening = 0.3 has no config key, so a config cannot hold it",
                       std::invalid_argument);
}
