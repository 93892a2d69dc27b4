// Internal helpers for validating optimizer and schedule options (not part of the public
// API, hence no usage example).
//
// Range rules are written once, as functions that return the first OptionError: the
// optimizers' and the schedule's constructors turn it into one message shape,
// "adam: option betas = [1, 0.999] is out of range; expected values in [0, 1)", and the
// YAML reader into a ConfigError at the key's file and line
// ("copy.yaml:5:13: optim.lr: expected a positive learning rate, found -0.1").
#pragma once

#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace qkv::optim {
struct OptimizerOptions;
struct ScheduleOptions;
}  // namespace qkv::optim

namespace qkv::optim::detail {

inline void check_option(bool ok, const std::string& who, const char* option, double value,
                         const char* expected) {
  if (ok) return;
  std::ostringstream message;
  message << who << ": option " << option << " = " << value << " is out of range; expected "
          << expected;
  throw std::invalid_argument(message.str());
}

// One option out of range.
struct OptionError {
  std::string key;       // relative to the options: "lr", "betas", "schedule.min_lr"
  std::string expected;  // "a positive learning rate"
  std::string found;     // the value as text: "-0.1", "[0.9, 1.5]", "true"
};

// How the rules name the keys they refer to: in code, the options' own fields ("lr",
// "schedule.total_steps"); in a config, the keys a user wrote ("optim.lr", "train.steps").
struct OptionNames {
  std::string prefix;       // put before a sibling key: "" or "optim."
  std::string total_steps;  // what sets schedule.total_steps
};

// "<who>: option <key> = <found> is out of range; expected <expected>"
[[noreturn]] void throw_option_error(const std::string& who, const OptionError& error);

// The schedule's rules (schedule.cpp); keys relative to the schedule ("min_lr").
// `lr_name` names the base rate in messages.
std::optional<OptionError> find_schedule_error(const ScheduleOptions& options, double base_lr,
                                               const std::string& lr_name,
                                               const std::string& total_steps_name);

// A field that only some optimizer types read (the rest must leave it at its default).
struct TypeSpecificField {
  const char* key;
  std::vector<std::string> types;
  bool in_config;  // a key of the optim: section (dampening is set in code only)
  std::string (*text)(const OptimizerOptions&);  // the field's value as text

  bool applies_to(const std::string& type) const;
};
const std::vector<TypeSpecificField>& type_specific_fields();

// Every rule of OptimizerOptions (options.cpp), in the order of the optim: section:
// the keys options.type uses, keys of another type left at their defaults, then the
// schedule (whose warm-up must fit in total_steps). options.type must be known.
std::optional<OptionError> find_optimizer_error(const OptimizerOptions& options,
                                                const OptionNames& names);

// A copy of `options` with type `type`, checked (std::invalid_argument naming `type`):
// what an optimizer's constructor keeps.
OptimizerOptions checked_as(const std::string& type, const OptimizerOptions& options);

}  // namespace qkv::optim::detail
