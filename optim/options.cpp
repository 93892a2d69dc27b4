// OptimizerOptions: the range rules of every field, written once (see option_check.hpp for
// how constructors and the YAML reader report them), and the `optim:` section's reader and
// writer.
#include "optim/options.hpp"

#include <cmath>
#include <stdexcept>
#include <utility>

#include "optim/option_check.hpp"

namespace qkv::optim {

namespace {

std::string join(const std::vector<std::string>& words) {
  std::string out;
  for (std::size_t i = 0; i < words.size(); ++i) out += (i ? ", " : "") + words[i];
  return out;
}

}  // namespace

const std::vector<std::string>& optimizer_types() {
  static const std::vector<std::string> types = {"sgd", "adam", "adamw"};
  return types;
}

namespace detail {

namespace {

std::string betas_text(const OptimizerOptions& o) {
  return "[" + format_number(o.betas[0]) + ", " + format_number(o.betas[1]) + "]";
}

bool is_known_type(const std::string& type) {
  for (const std::string& known : optimizer_types()) {
    if (type == known) return true;
  }
  return false;
}

bool finite_non_negative(double value) { return std::isfinite(value) && value >= 0; }

std::optional<OptionError> sgd_error(const OptimizerOptions& o, const std::string& prefix) {
  if (!(o.momentum >= 0 && o.momentum < 1)) {
    return OptionError{"momentum", "a value in [0, 1)", format_number(o.momentum)};
  }
  if (!(o.dampening >= 0 && o.dampening <= 1)) {
    return OptionError{"dampening", "a value in [0, 1]", format_number(o.dampening)};
  }
  if (o.nesterov && !(o.momentum > 0)) {
    return OptionError{"nesterov", "false unless " + prefix + "momentum is positive", "true"};
  }
  if (o.nesterov && o.dampening != 0) {
    return OptionError{"nesterov", "false unless " + prefix + "dampening is 0", "true"};
  }
  return std::nullopt;
}

std::optional<OptionError> adam_error(const OptimizerOptions& o) {
  const auto beta_ok = [](double beta) { return beta >= 0 && beta < 1; };
  if (!beta_ok(o.betas[0]) || !beta_ok(o.betas[1])) {
    return OptionError{"betas", "values in [0, 1)", betas_text(o)};
  }
  // eps 0 divides 0 by 0 wherever a parameter has had only zero gradients (the embedding
  // row of a token no batch used): its weight turns NaN at the first step.
  if (!(std::isfinite(o.eps) && o.eps > 0)) {
    return OptionError{"eps", "a positive number (0 makes 0/0 where a gradient is 0)",
                       format_number(o.eps)};
  }
  return std::nullopt;
}

// A field that options.type does not read must keep its default.
std::optional<OptionError> foreign_field_error(const OptimizerOptions& o) {
  const OptimizerOptions defaults;
  for (const TypeSpecificField& field : type_specific_fields()) {
    if (field.applies_to(o.type)) continue;
    const std::string value = field.text(o);
    const std::string fallback = field.text(defaults);
    if (value != fallback) {
      return OptionError{field.key,
                         fallback + " (" + field.key + " applies to " + join(field.types) +
                             " only)",
                         value};
    }
  }
  return std::nullopt;
}

}  // namespace

bool TypeSpecificField::applies_to(const std::string& type) const {
  for (const std::string& t : types) {
    if (t == type) return true;
  }
  return false;
}

const std::vector<TypeSpecificField>& type_specific_fields() {
  static const std::vector<TypeSpecificField> fields = {
      {"betas", {"adam", "adamw"}, true, betas_text},
      {"eps", {"adam", "adamw"}, true,
       [](const OptimizerOptions& o) { return format_number(o.eps); }},
      {"momentum", {"sgd"}, true,
       [](const OptimizerOptions& o) { return format_number(o.momentum); }},
      {"dampening", {"sgd"}, false,
       [](const OptimizerOptions& o) { return format_number(o.dampening); }},
      {"nesterov", {"sgd"}, true,
       [](const OptimizerOptions& o) { return std::string(o.nesterov ? "true" : "false"); }},
  };
  return fields;
}

void throw_option_error(const std::string& who, const OptionError& error) {
  throw std::invalid_argument(who + ": option " + error.key + " = " + error.found +
                              " is out of range; expected " + error.expected);
}

std::optional<OptionError> find_optimizer_error(const OptimizerOptions& o,
                                                const OptionNames& names) {
  if (!(std::isfinite(o.lr) && o.lr > 0)) {
    return OptionError{"lr", "a positive learning rate", format_number(o.lr)};
  }
  std::optional<OptionError> error =
      o.type == "sgd" ? sgd_error(o, names.prefix) : adam_error(o);
  if (!error) error = foreign_field_error(o);
  if (error) return error;
  if (!finite_non_negative(o.weight_decay)) {
    return OptionError{"weight_decay", "a non-negative number", format_number(o.weight_decay)};
  }
  if (!finite_non_negative(o.clip_norm)) {
    return OptionError{"clip_norm", "a non-negative norm (0: off)", format_number(o.clip_norm)};
  }
  if (!finite_non_negative(o.clip_value)) {
    return OptionError{"clip_value", "a non-negative value (0: off)",
                       format_number(o.clip_value)};
  }
  const ScheduleOptions& s = o.schedule;
  if (s.warmup_steps > s.total_steps) {
    return OptionError{"schedule.warmup_steps",
                       "at most " + names.total_steps + " (" + std::to_string(s.total_steps) + ")",
                       std::to_string(s.warmup_steps)};
  }
  error = find_schedule_error(s, o.lr, names.prefix + "lr", names.total_steps);
  if (error) error->key = "schedule." + error->key;
  return error;
}

OptimizerOptions checked_as(const std::string& type, const OptimizerOptions& options) {
  OptimizerOptions own = options;
  own.type = type;
  check_optimizer_options(own);
  return own;
}

}  // namespace detail

void check_optimizer_options(const OptimizerOptions& options) {
  if (!detail::is_known_type(options.type)) {
    throw std::invalid_argument("unknown optimizer type '" + options.type +
                                "' (known types: " + join(optimizer_types()) + ")");
  }
  const std::optional<detail::OptionError> error =
      detail::find_optimizer_error(options, {"", "schedule.total_steps"});
  if (error) detail::throw_option_error(options.type, *error);
}

namespace {

// Keys that apply to some values of a choice only (schedule.type here; optim.type below):
// present under another value, they are an error naming where they belong.
void reject_foreign_keys(const ConfigNode& node, const std::string& choice,
                         const std::vector<std::pair<std::string, std::vector<std::string>>>&
                             keys_by_choices) {
  const std::string scope = node.path().empty() ? "type" : node.path() + ".type";
  for (const auto& [key, choices] : keys_by_choices) {
    bool applies = false;
    for (const std::string& c : choices) applies = applies || c == choice;
    if (!applies && node.has(key)) {
      node.fail(key, "applies to " + join(choices) + " only; " + scope + " is " + choice);
    }
  }
}

ScheduleOptions read_schedule(const ConfigNode& node, std::size_t total_steps) {
  ScheduleOptions s;
  const std::string type =
      node.get_choice("type", schedule_type_names(), schedule_type_name(s.type));
  s.type = schedule_type_from_name(type);
  reject_foreign_keys(node, type,
                      {{"min_lr", {"cosine"}}, {"step_size", {"step"}}, {"gamma", {"step"}}});
  s.warmup_steps = node.get<std::size_t>("warmup_steps", s.warmup_steps);
  s.total_steps = total_steps;
  if (s.type == ScheduleType::cosine) s.min_lr = node.get<double>("min_lr", s.min_lr);
  if (s.type == ScheduleType::step) {
    s.step_size = node.get<std::size_t>("step_size");
    s.gamma = node.get<double>("gamma", s.gamma);
  }
  return s;
}

}  // namespace

OptimizerOptions read_optimizer_options(const ConfigNode& node, std::size_t total_steps) {
  OptimizerOptions o;
  o.type = node.get_choice("type", optimizer_types(), o.type);
  std::vector<std::pair<std::string, std::vector<std::string>>> type_specific;
  for (const detail::TypeSpecificField& field : detail::type_specific_fields()) {
    if (field.in_config) type_specific.push_back({field.key, field.types});
  }
  reject_foreign_keys(node, o.type, type_specific);
  o.lr = node.get<double>("lr", o.lr);
  if (o.type == "sgd") {
    o.momentum = node.get<double>("momentum", o.momentum);
    o.nesterov = node.get<bool>("nesterov", o.nesterov);
  } else {
    const auto betas = node.get<std::vector<double>>("betas", {o.betas[0], o.betas[1]});
    node.require(betas.size() == 2, "betas", "two values [beta1, beta2]");
    o.betas = {betas[0], betas[1]};
    o.eps = node.get<double>("eps", o.eps);
  }
  o.weight_decay = node.get<double>("weight_decay", o.weight_decay);
  o.decay_embeddings = node.get<bool>("decay_embeddings", o.decay_embeddings);
  o.clip_norm = node.get<double>("clip_norm", o.clip_norm);
  o.clip_value = node.get<double>("clip_value", o.clip_value);
  const ConfigNode schedule = node.child("schedule");
  o.schedule = read_schedule(schedule, total_steps);

  // The rules every optimizer checks, reported at the key. The trainer's config sets the
  // schedule's length from train.steps.
  const std::string prefix = node.path().empty() ? "" : node.path() + ".";
  const std::optional<detail::OptionError> error =
      detail::find_optimizer_error(o, {prefix, "train.steps"});
  if (error) {
    const std::string schedule_prefix = "schedule.";
    const bool in_schedule = error->key.compare(0, schedule_prefix.size(), schedule_prefix) == 0;
    (in_schedule ? schedule : node)
        .require(false, in_schedule ? error->key.substr(schedule_prefix.size()) : error->key,
                 error->expected);
  }
  return o;
}

void write_optimizer_options(const OptimizerOptions& o, ConfigWriter& out) {
  if (o.dampening != OptimizerOptions().dampening) {
    throw std::invalid_argument("optim: dampening = " + format_number(o.dampening) +
                                " has no config key, so a config cannot hold it");
  }
  out.set("type", o.type);
  out.set("lr", o.lr);
  if (o.type == "sgd") {
    out.set("momentum", o.momentum);
    out.set("nesterov", o.nesterov);
  } else {
    out.set("betas", std::vector<double>{o.betas[0], o.betas[1]});
    out.set("eps", o.eps);
  }
  out.set("weight_decay", o.weight_decay);
  out.set("decay_embeddings", o.decay_embeddings);
  out.set("clip_norm", o.clip_norm);
  out.set("clip_value", o.clip_value);
  const ScheduleOptions& s = o.schedule;
  ConfigWriter& schedule = out.child("schedule");
  schedule.set("type", schedule_type_name(s.type));
  schedule.set("warmup_steps", s.warmup_steps);
  if (s.type == ScheduleType::cosine) schedule.set("min_lr", s.min_lr);
  if (s.type == ScheduleType::step) {
    schedule.set("step_size", s.step_size);
    schedule.set("gamma", s.gamma);
  }
}

}  // namespace qkv::optim
