// Config: the run's own keys (name, seed, train:) and the composition of the sections that
// tasks/, layers/ and optim/ read and write themselves.
#include "train/config.hpp"

#include <filesystem>
#include <sstream>

#include "optim/factory.hpp"
#include "strict_yaml/config_writer.hpp"
#include "strict_yaml/text.hpp"
#include "tasks/limits.hpp"
#include "tasks/loss_on.hpp"
#include "tasks/registry.hpp"
#include "train/resources.hpp"

namespace qkv::train {

namespace fs = std::filesystem;

namespace {

// `on_this_machine`: the config is the user's own, for a run here (threads <= cores).
TrainConfig read_train(const ConfigNode& node, bool on_this_machine) {
  TrainConfig t;
  const auto positive = [&](const char* key, std::size_t fallback, const char* expected) {
    const std::size_t value = node.get<std::size_t>(key, fallback);
    node.require(value > 0, key, expected);
    return value;
  };
  const auto at_most = [&](const char* key, std::size_t value, std::size_t limit) {
    node.require(value <= limit, key, "at most " + std::to_string(limit) + " (train/config.hpp)");
  };
  t.steps = positive("steps", t.steps, "a positive number of steps");
  t.batch_size = positive("batch_size", t.batch_size, "a positive batch size");
  at_most("batch_size", t.batch_size, kMaxBatchSize);
  t.eval_every = positive("eval_every", t.eval_every, "a positive number of steps");
  t.eval_samples = positive("eval_samples", t.eval_samples, "a positive number of examples");
  at_most("eval_samples", t.eval_samples, kMaxEvalSamples);
  t.threads = positive("threads", t.threads, "a positive number of threads");
  // A saved config's threads were another machine's choice: eval and inspect cap them.
  if (on_this_machine) {
    const std::size_t cores = available_cores();
    node.require(t.threads <= cores, "threads",
                 "at most " + std::to_string(cores) +
                     " threads (the cores this process may use; more made OpenBLAS hang at exit)");
  }
  t.checkpoint_every = node.get<std::size_t>("checkpoint_every", t.checkpoint_every);
  t.log_every = positive("log_every", t.log_every, "a positive number of steps");
  t.loss_on = tasks::read_loss_on(node, "loss_on");
  t.stop_at_seq_acc = node.get<double>("stop_at_seq_acc", t.stop_at_seq_acc);
  node.require(t.stop_at_seq_acc >= 0 && t.stop_at_seq_acc <= 1, "stop_at_seq_acc",
               "an accuracy in [0, 1] (0: train every step)");
  return t;
}

void write_train(const TrainConfig& t, ConfigWriter& out) {
  out.set("steps", t.steps);
  out.set("batch_size", t.batch_size);
  out.set("eval_every", t.eval_every);
  out.set("eval_samples", t.eval_samples);
  out.set("threads", t.threads);
  out.set("checkpoint_every", t.checkpoint_every);
  out.set("log_every", t.log_every);
  out.set("loss_on", tasks::loss_on_name(t.loss_on));
  out.set("stop_at_seq_acc", t.stop_at_seq_acc);
}

// Every string a task hands on is written later (token names go into checkpoints), and
// its sizes size the model: both are checked before the first step, for any task.
void check_task(const ConfigNode& root, const tasks::Task& task) {
  for (const std::string& token : task.token_names()) {
    const std::string problem = text_problem(token);
    if (!problem.empty())
      root.fail("task", "token '" + quote_for_message(token) +
                            "' is not UTF-8 text without NUL bytes: " + problem);
  }
  const std::size_t own = task.vocab_size() - tasks::Task::first_own_id;
  if (own > tasks::kMaxOwnTokens)
    root.fail("task", "the task has " + std::to_string(own) + " tokens of its own; the limit is " +
                          std::to_string(tasks::kMaxOwnTokens) + " (tasks/limits.hpp)");
  if (task.max_seq_len() > tasks::kMaxPositions)
    root.fail("task", "the task's examples need up to " + std::to_string(task.max_seq_len()) +
                          " positions; the limit is " + std::to_string(tasks::kMaxPositions) +
                          " (tasks/limits.hpp)");
}

// Reads and validates one tree. The task is made once here, so that its keys and data
// are checked with the rest; the model's layer sections are checked when it is built. A
// foreign tree (a checkpoint's saved config) opens no file and is not held to this
// machine's cores.
Config read_config(const ConfigNode& root, const std::string& default_name,
                   const std::string& task_state) {
  Config config;
  config.name = root.get<std::string>("name", default_name);
  root.require(!config.name.empty() && config.name.find('/') == std::string::npos &&
                   config.name != "." && config.name != "..",
               "name", "a run name usable as a folder name (no '/')");
  config.seed = root.get<std::uint64_t>("seed", config.seed);
  config.train = read_train(root.child("train"), !root.is_foreign());
  const ConfigNode task = root.child("task");
  task.get<std::string>("type");  // required: a run names what it learns
  config.task = root.section("task", "copy");
  // ConfigErrors at the task's keys (its data included)
  check_task(root, *config.make_task(task_state));
  config.optim = optim::read_optimizer_options(root.child("optim"), config.train.steps);
  if (!root.has("model")) root.fail("model", "required section is missing");
  config.model = layers::read_transformer_options(root.child("model"));
  root.finish();
  return config;
}

Config with_overrides(ConfigNode root, const std::vector<std::string>& overrides,
                      const std::string& default_name) {
  for (const std::string& assignment : overrides) root.apply_override(assignment);
  if (root.has("ablate"))
    root.fail("ablate", "this is a sweep config: `qkv ablate` reads this section and trains "
                        "every variant and seed of it; to train one run, train its base config "
                        "(with --set for a variant)");
  return read_config(root, default_name, "");
}

}  // namespace

std::unique_ptr<tasks::Task> Config::make_task(const std::string& state) const {
  return tasks::make_task(task, train.loss_on, state);
}

Config parse_config(const std::string& text, const std::string& source,
                    const std::vector<std::string>& overrides) {
  return with_overrides(ConfigNode::parse(text, source), overrides,
                        fs::path(source).stem().string());
}

Config parse_checkpoint_config(const std::string& yaml, const std::string& source,
                               const std::string& task_state) {
  return read_config(ConfigNode::parse_foreign(yaml, source), fs::path(source).stem().string(),
                     task_state);
}

Config read_config_tree(const ConfigNode& root, const std::string& default_name) {
  return read_config(root, default_name, "");
}

Config load_config(const std::string& path, const std::vector<std::string>& overrides) {
  return with_overrides(load_config_tree(path), overrides, fs::path(path).stem().string());
}

std::string to_yaml(const Config& c) {
  ConfigWriter out;
  out.set("name", c.name);
  out.set("seed", static_cast<unsigned long>(c.seed));
  out.set_section("task", c.task);
  layers::write_transformer_options(c.model, out.child("model"));
  optim::write_optimizer_options(c.optim, out.child("optim"));
  write_train(c.train, out.child("train"));
  return out.str();
}

std::string first_difference(const std::string& was, const std::string& now,
                             const std::string& now_name) {
  std::istringstream a(was), b(now);
  for (std::string line_a, line_b;;) {
    const bool more_a = static_cast<bool>(std::getline(a, line_a));
    const bool more_b = static_cast<bool>(std::getline(b, line_b));
    if (!more_a && !more_b) return "no line differs";
    if (more_a && more_b && line_a == line_b) continue;
    const auto shown = [](bool more, const std::string& line) {
      const std::size_t start = line.find_first_not_of(' ');
      return more && start != std::string::npos ? "`" + line.substr(start) + "`"
                                                : std::string("nothing");
    };
    return "the run's has " + shown(more_a, line_a) + ", this " + now_name + "'s " +
           shown(more_b, line_b);
  }
}

}  // namespace qkv::train
