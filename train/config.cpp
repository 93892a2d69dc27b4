// Config: reading each section strictly, --set overrides, and the resolved YAML.
//
// The schema lives here, section by section; each reader asks ConfigNode for every key it
// knows, so finish() can name any other key as unknown. Keys that belong to another
// choice (momentum with adam, min_len with recall) are errors of their own, saying which
// choice they belong to, rather than "unknown".
#include "train/config.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "layers/build_model.hpp"
#include "optim/factory.hpp"

namespace qkv::train {

namespace fs = std::filesystem;

namespace {

std::string join(const std::vector<std::string>& words, const char* separator) {
  std::string out;
  for (std::size_t i = 0; i < words.size(); ++i) out += (i ? separator : "") + words[i];
  return out;
}

// Keys that apply only to some values of a choice (optim.type, task.type, ...): present
// under another value, they are an error naming where they belong.
void reject_foreign_keys(const ConfigNode& node, const std::string& choice_key,
                         const std::string& choice,
                         const std::vector<std::pair<std::string, std::vector<std::string>>>&
                             keys_by_choices) {
  for (const auto& [key, choices] : keys_by_choices) {
    if (std::find(choices.begin(), choices.end(), choice) != choices.end()) continue;
    if (node.has(key)) {
      const std::string scope = node.path().empty() ? choice_key : node.path() + "." + choice_key;
      node.fail(key, "applies to " + join(choices, ", ") + " only; " + scope + " is " + choice);
    }
  }
}

// ---- task ----

std::string resolve_path(const std::string& path, const fs::path& base_dir) {
  const fs::path p(path);
  return (p.is_absolute() ? p : fs::absolute(base_dir / p)).lexically_normal().string();
}

void read_sequence_options(const ConfigNode& node, tasks::SequenceTaskOptions& o) {
  o.symbols = node.get<std::size_t>("symbols", o.symbols);
  node.require(o.symbols >= 1, "symbols", "at least 1 symbol");
  o.min_len = node.get<std::size_t>("min_len", o.min_len);
  node.require(o.min_len >= 1, "min_len", "a length of at least 1");
  o.max_len = node.get<std::size_t>("max_len", o.max_len);
  node.require(o.max_len >= o.min_len, "max_len",
               "a length of at least task.min_len (" + std::to_string(o.min_len) + ")");
}

void read_agreement_options(const ConfigNode& node, tasks::AgreementTaskOptions& o) {
  // Every word is one token: it may appear in one list only.
  std::map<std::string, std::string> owner;  // word -> the key that listed it first
  const auto check_word = [&](const char* key, const std::string& word) {
    node.require(!word.empty() && word.find_first_of(" \t") == std::string::npos &&
                     word != "PAD" && word != "SEP",
                 key, "words without spaces, other than PAD and SEP");
    const auto [it, fresh] = owner.emplace(word, key);
    if (!fresh) {
      node.fail(key, "the word '" + word + "' is listed twice (also in " + node.path() + "." +
                         it->second + ")");
    }
  };
  const auto words = [&](const char* key, const std::vector<std::string>& fallback) {
    const auto list = node.get<std::vector<std::string>>(key, fallback);
    for (const std::string& word : list) check_word(key, word);
    return list;
  };
  const auto word = [&](const char* key, const std::string& fallback) {
    const auto value = node.get<std::string>(key, fallback);
    check_word(key, value);
    return value;
  };
  o.singular_nouns = words("singular_nouns", o.singular_nouns);
  node.require(!o.singular_nouns.empty(), "singular_nouns", "at least one noun");
  o.plural_nouns = words("plural_nouns", o.plural_nouns);
  node.require(!o.plural_nouns.empty(), "plural_nouns", "at least one noun");
  o.singular_verb = word("singular_verb", o.singular_verb);
  o.plural_verb = word("plural_verb", o.plural_verb);
  o.fillers = words("fillers", o.fillers);
  o.max_attractors = node.get<std::size_t>("max_attractors", o.max_attractors);
  o.max_fillers = node.get<std::size_t>("max_fillers", o.max_fillers);
  o.max_leading = node.get<std::size_t>("max_leading", o.max_leading);
  node.require(!o.fillers.empty() || (o.max_fillers == 0 && o.max_leading == 0), "fillers",
               "at least one filler word while max_fillers or max_leading is positive");
}

void read_recall_options(const ConfigNode& node, tasks::RecallTaskOptions& o) {
  o.keys = node.get<std::size_t>("keys", o.keys);
  o.values = node.get<std::size_t>("values", o.values);
  node.require(o.values >= 1, "values", "at least 1 value symbol");
  o.pairs = node.get<std::size_t>("pairs", o.pairs);
  node.require(o.pairs >= 1 && o.pairs <= o.keys, "pairs",
               "1..task.keys (" + std::to_string(o.keys) + ") pairs: a prompt's keys differ");
  o.queries = node.get<std::size_t>("queries", o.queries);
  node.require(o.queries >= 1 && o.queries <= o.pairs, "queries",
               "1..task.pairs (" + std::to_string(o.pairs) + ") queries");
}

// Data paths from the file are relative to its folder; those given by --set, to the
// current folder (where the command was typed).
tasks::TaskConfig read_task(const ConfigNode& node, const fs::path& base_dir,
                     const std::set<std::string>& overridden) {
  const auto data_path = [&](const char* key) {
    const bool from_command_line = overridden.count(node.path() + "." + key) > 0;
    return resolve_path(node.get<std::string>(key),
                        from_command_line ? fs::current_path() : base_dir);
  };
  tasks::TaskConfig task;
  task.type = node.get<std::string>("type");
  node.get_choice("type", tasks::task_types(), task.type);
  const std::vector<std::string> sequence = {"copy", "reverse", "sort"};
  reject_foreign_keys(node, "type", task.type,
                      {{"symbols", sequence},
                       {"min_len", sequence},
                       {"max_len", sequence},
                       {"singular_nouns", {"agreement"}},
                       {"plural_nouns", {"agreement"}},
                       {"singular_verb", {"agreement"}},
                       {"plural_verb", {"agreement"}},
                       {"fillers", {"agreement"}},
                       {"max_attractors", {"agreement"}},
                       {"max_fillers", {"agreement"}},
                       {"max_leading", {"agreement"}},
                       {"keys", {"recall"}},
                       {"values", {"recall"}},
                       {"pairs", {"recall"}},
                       {"queries", {"recall"}},
                       {"train_file", {"file"}},
                       {"eval_file", {"file"}}});
  if (task.type == "agreement") {
    read_agreement_options(node, task.agreement);
  } else if (task.type == "recall") {
    read_recall_options(node, task.recall);
  } else if (task.type == "file") {
    task.file.train_file = data_path("train_file");
    if (node.has("eval_file")) task.file.eval_file = data_path("eval_file");
  } else {
    read_sequence_options(node, task.sequence);
  }
  return task;
}

// ---- optim ----

optim::ScheduleOptions read_schedule(const ConfigNode& node, double lr, std::size_t steps) {
  optim::ScheduleOptions s;
  const std::string type =
      node.get_choice("type", optim::schedule_type_names(), optim::schedule_type_name(s.type));
  s.type = optim::schedule_type_from_name(type);
  reject_foreign_keys(node, "type", type,
                      {{"min_lr", {"cosine"}}, {"step_size", {"step"}}, {"gamma", {"step"}}});
  s.warmup_steps = node.get<std::size_t>("warmup_steps", 0);
  node.require(s.warmup_steps <= steps, "warmup_steps",
               "at most train.steps (" + std::to_string(steps) + ")");
  s.total_steps = steps;
  if (s.type == optim::ScheduleType::cosine) {
    s.min_lr = node.get<double>("min_lr", 0.0);
    node.require(s.min_lr >= 0 && s.min_lr <= lr, "min_lr",
                 "a rate in [0, optim.lr] (optim.lr is " + std::to_string(lr) + ")");
  }
  if (s.type == optim::ScheduleType::step) {
    s.step_size = node.get<std::size_t>("step_size");
    node.require(s.step_size > 0, "step_size", "a positive number of steps");
    s.gamma = node.get<double>("gamma", s.gamma);
    node.require(s.gamma > 0 && s.gamma <= 1, "gamma", "a factor in (0, 1]");
  }
  return s;
}

OptimConfig read_optim(const ConfigNode& node, std::size_t steps) {
  OptimConfig o;
  o.type = node.get_choice("type", optim::optimizer_types(), o.type);
  reject_foreign_keys(node, "type", o.type,
                      {{"betas", {"adam", "adamw"}},
                       {"eps", {"adam", "adamw"}},
                       {"momentum", {"sgd"}},
                       {"nesterov", {"sgd"}}});
  o.lr = node.get<double>("lr", o.lr);
  node.require(o.lr > 0, "lr", "a positive learning rate");
  if (o.type == "sgd") {
    o.momentum = node.get<double>("momentum", o.momentum);
    node.require(o.momentum >= 0 && o.momentum < 1, "momentum", "a value in [0, 1)");
    o.nesterov = node.get<bool>("nesterov", o.nesterov);
    node.require(!o.nesterov || o.momentum > 0, "nesterov",
                 "false unless optim.momentum is positive");
  } else {
    const std::vector<double> betas = node.get<std::vector<double>>("betas", {o.beta1, o.beta2});
    node.require(betas.size() == 2, "betas", "two values [beta1, beta2]");
    node.require(betas[0] >= 0 && betas[0] < 1 && betas[1] >= 0 && betas[1] < 1, "betas",
                 "values in [0, 1)");
    o.beta1 = betas[0];
    o.beta2 = betas[1];
    o.eps = node.get<double>("eps", o.eps);
    node.require(o.eps >= 0, "eps", "a non-negative number");
  }
  o.weight_decay = node.get<double>("weight_decay", o.weight_decay);
  node.require(o.weight_decay >= 0, "weight_decay", "a non-negative number");
  o.decay_embeddings = node.get<bool>("decay_embeddings", o.decay_embeddings);
  o.clip_norm = node.get<double>("clip_norm", o.clip_norm);
  node.require(o.clip_norm >= 0, "clip_norm", "a non-negative norm (0: off)");
  o.clip_value = node.get<double>("clip_value", o.clip_value);
  node.require(o.clip_value >= 0, "clip_value", "a non-negative value (0: off)");
  o.schedule = read_schedule(node.child("schedule"), o.lr, steps);
  return o;
}

// ---- train ----

TrainConfig read_train(const ConfigNode& node) {
  TrainConfig t;
  const auto positive = [&](const char* key, std::size_t fallback, const char* expected) {
    const std::size_t value = node.get<std::size_t>(key, fallback);
    node.require(value > 0, key, expected);
    return value;
  };
  t.steps = positive("steps", t.steps, "a positive number of steps");
  t.batch_size = positive("batch_size", t.batch_size, "a positive batch size");
  t.eval_every = positive("eval_every", t.eval_every, "a positive number of steps");
  t.eval_samples = positive("eval_samples", t.eval_samples, "a positive number of examples");
  t.threads = positive("threads", t.threads, "a positive number of threads");
  t.checkpoint_every = node.get<std::size_t>("checkpoint_every", t.checkpoint_every);
  t.log_every = positive("log_every", t.log_every, "a positive number of steps");
  t.loss_on = node.get_choice("loss_on", {"answer", "all"}, "answer") == "all" ? tasks::LossOn::all
                                                                             : tasks::LossOn::answer;
  t.stop_at_seq_acc = node.get<double>("stop_at_seq_acc", t.stop_at_seq_acc);
  node.require(t.stop_at_seq_acc >= 0 && t.stop_at_seq_acc <= 1, "stop_at_seq_acc",
               "an accuracy in [0, 1] (0: train every step)");
  return t;
}

// ---- the whole file ----

// Reads and validates one YAML tree. The model section is checked by building the model
// once for the task's vocabulary and length (cheap for the sizes qkv trains).
Config read_config(const YAML::Node& yaml, const std::string& source, const fs::path& base_dir,
                   const std::string& default_name, const std::set<std::string>& overridden,
                   const std::string& task_state) {
  const ConfigNode root(yaml, "", source);
  Config config;
  config.name = root.get<std::string>("name", default_name);
  root.require(!config.name.empty() && config.name.find('/') == std::string::npos &&
                   config.name != "." && config.name != "..",
               "name", "a run name usable as a folder name (no '/')");
  config.seed = root.get<std::uint64_t>("seed", config.seed);
  config.train = read_train(root.child("train"));
  const ConfigNode task_node = root.child("task");
  config.task = read_task(task_node, base_dir, overridden);
  config.optim = read_optim(root.child("optim"), config.train.steps);

  std::unique_ptr<tasks::Task> task;
  try {
    task = tasks::make_task(config.task, config.train.loss_on, task_state);
  } catch (const std::invalid_argument& e) {
    task_node.fail(config.task.type == "file" ? "train_file" : "type", e.what());
  }
  if (!root.has("model")) root.fail("model", "required section is missing");
  const ConfigNode model = root.child("model");
  config.model = YAML::Clone(model.yaml());
  core::Rng rng(config.seed);
  try {
    layers::build_model(model, task->vocab_size(), task->max_seq_len(), rng);
  } catch (const std::invalid_argument& e) {
    root.fail("model", e.what());
  }
  root.finish();
  return config;
}

// A copy of an override's value without positions (they would point into the --set
// text): ConfigNode then names the source alone for it.
YAML::Node without_marks(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Scalar: return YAML::Node(node.Scalar());
    case YAML::NodeType::Sequence: {
      YAML::Node out(YAML::NodeType::Sequence);
      for (const auto& element : node) out.push_back(without_marks(element));
      return out;
    }
    case YAML::NodeType::Map: {
      YAML::Node out(YAML::NodeType::Map);
      for (const auto& pair : node) out[pair.first.Scalar()] = without_marks(pair.second);
      return out;
    }
    default: return YAML::Node(YAML::NodeType::Null);
  }
}

// Sets `path` (a.b.c) in `tree` to `value`, making mappings on the way as needed.
void set_path(YAML::Node tree, const std::vector<std::string>& path, std::size_t i,
              const YAML::Node& value, const std::string& text) {
  const std::string& key = path[i];
  if (i + 1 == path.size()) {
    tree[key] = value;
    return;
  }
  YAML::Node next = tree[key];  // a handle into the tree: assigning to it writes there
  if (!next.IsDefined() || next.IsNull()) next = YAML::Node(YAML::NodeType::Map);
  if (!next.IsMap()) {
    std::string prefix = path[0];
    for (std::size_t k = 1; k <= i; ++k) prefix += "." + path[k];
    throw ConfigError("--set: " + text + ": " + prefix + " is not a mapping (it holds " +
                      (next.IsScalar() ? next.Scalar() : std::string("a sequence")) + ")");
  }
  set_path(next, path, i + 1, value, text);
}

// Applies "a.b.c=value" to the tree; returns the path "a.b.c".
std::string apply_override(YAML::Node& tree, const std::string& text) {
  const std::size_t equals = text.find('=');
  if (equals == std::string::npos || equals == 0) {
    throw ConfigError("--set: expected key.path=value, found '" + text + "'");
  }
  const std::string dotted = text.substr(0, equals);
  std::vector<std::string> path;
  std::stringstream keys(dotted);
  for (std::string key; std::getline(keys, key, '.');) path.push_back(key);
  if (dotted.back() == '.') path.push_back("");
  for (const std::string& key : path) {
    if (key.empty()) throw ConfigError("--set: '" + text + "' has an empty key in its path");
  }
  YAML::Node value;
  try {
    value = YAML::Load(text.substr(equals + 1));
  } catch (const YAML::Exception& e) {
    throw ConfigError("--set: " + text + ": the value is not YAML (" + e.msg + ")");
  }
  if (!tree.IsDefined() || tree.IsNull()) tree = YAML::Node(YAML::NodeType::Map);
  set_path(tree, path, 0, without_marks(value), text);
  return dotted;
}

Config parse_with_overrides(YAML::Node yaml, const std::string& source, const fs::path& base_dir,
                            const std::string& default_name,
                            const std::vector<std::string>& overrides,
                            const std::string& task_state = "") {
  std::set<std::string> overridden;
  for (const std::string& text : overrides) overridden.insert(apply_override(yaml, text));
  try {
    return read_config(yaml, source, base_dir, default_name, overridden, task_state);
  } catch (const ConfigError& e) {
    // Values the overrides put in the tree have no file position, so ConfigNode names them
    // by the bare source ("copy.yaml: optim.lr: ..."): those errors are the override's.
    const std::string bare = source + ": ";
    const std::string message = e.what();
    if (!overrides.empty() && message.compare(0, bare.size(), bare) == 0) {
      throw ConfigError("--set: " + message.substr(bare.size()));
    }
    throw;
  }
}

std::string format_number(double value) {
  // The shortest decimal that reads back as the same double.
  char buffer[32];
  for (int precision = 1; precision <= 17; ++precision) {
    std::snprintf(buffer, sizeof buffer, "%.*g", precision, value);
    if (std::strtod(buffer, nullptr) == value) break;
  }
  return buffer;
}

}  // namespace

const char* loss_on_name(tasks::LossOn loss_on) { return loss_on == tasks::LossOn::all ? "all" : "answer"; }

Config parse_config(const std::string& text, const std::string& source,
                    const std::vector<std::string>& overrides, const std::string& task_state) {
  YAML::Node yaml;
  try {
    yaml = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    throw ConfigError(source + ":" + std::to_string(e.mark.line + 1) + ":" +
                      std::to_string(e.mark.column + 1) + ": not valid YAML: " + e.msg);
  }
  return parse_with_overrides(yaml, source, fs::current_path(), fs::path(source).stem().string(),
                              overrides, task_state);
}

Config load_config(const std::string& path, const std::vector<std::string>& overrides) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read config file '" + path + "'");
  std::stringstream text;
  text << in.rdbuf();
  YAML::Node yaml;
  try {
    yaml = YAML::Load(text.str());
  } catch (const YAML::Exception& e) {
    throw ConfigError(path + ":" + std::to_string(e.mark.line + 1) + ":" +
                      std::to_string(e.mark.column + 1) + ": not valid YAML: " + e.msg);
  }
  const fs::path base_dir = fs::absolute(fs::path(path)).parent_path();
  return parse_with_overrides(yaml, path, base_dir, fs::path(path).stem().string(), overrides);
}

std::string to_yaml(const Config& c) {
  YAML::Emitter out;
  const auto number = [](double v) { return format_number(v); };
  out << YAML::BeginMap;
  out << YAML::Key << "name" << YAML::Value << c.name;
  out << YAML::Key << "seed" << YAML::Value << c.seed;

  out << YAML::Key << "task" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "type" << YAML::Value << c.task.type;
  if (c.task.type == "agreement") {
    const tasks::AgreementTaskOptions& a = c.task.agreement;
    out << YAML::Key << "singular_nouns" << YAML::Value << YAML::Flow << a.singular_nouns;
    out << YAML::Key << "plural_nouns" << YAML::Value << YAML::Flow << a.plural_nouns;
    out << YAML::Key << "singular_verb" << YAML::Value << a.singular_verb;
    out << YAML::Key << "plural_verb" << YAML::Value << a.plural_verb;
    out << YAML::Key << "fillers" << YAML::Value << YAML::Flow << a.fillers;
    out << YAML::Key << "max_attractors" << YAML::Value << a.max_attractors;
    out << YAML::Key << "max_fillers" << YAML::Value << a.max_fillers;
    out << YAML::Key << "max_leading" << YAML::Value << a.max_leading;
  } else if (c.task.type == "recall") {
    out << YAML::Key << "keys" << YAML::Value << c.task.recall.keys;
    out << YAML::Key << "values" << YAML::Value << c.task.recall.values;
    out << YAML::Key << "pairs" << YAML::Value << c.task.recall.pairs;
    out << YAML::Key << "queries" << YAML::Value << c.task.recall.queries;
  } else if (c.task.type == "file") {
    out << YAML::Key << "train_file" << YAML::Value << c.task.file.train_file;
    if (!c.task.file.eval_file.empty()) {
      out << YAML::Key << "eval_file" << YAML::Value << c.task.file.eval_file;
    }
  } else {
    out << YAML::Key << "symbols" << YAML::Value << c.task.sequence.symbols;
    out << YAML::Key << "min_len" << YAML::Value << c.task.sequence.min_len;
    out << YAML::Key << "max_len" << YAML::Value << c.task.sequence.max_len;
  }
  out << YAML::EndMap;

  out << YAML::Key << "model" << YAML::Value << c.model;

  const OptimConfig& o = c.optim;
  out << YAML::Key << "optim" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "type" << YAML::Value << o.type;
  out << YAML::Key << "lr" << YAML::Value << number(o.lr);
  if (o.type == "sgd") {
    out << YAML::Key << "momentum" << YAML::Value << number(o.momentum);
    out << YAML::Key << "nesterov" << YAML::Value << o.nesterov;
  } else {
    out << YAML::Key << "betas" << YAML::Value << YAML::Flow << YAML::BeginSeq
        << number(o.beta1) << number(o.beta2) << YAML::EndSeq;
    out << YAML::Key << "eps" << YAML::Value << number(o.eps);
  }
  out << YAML::Key << "weight_decay" << YAML::Value << number(o.weight_decay);
  out << YAML::Key << "decay_embeddings" << YAML::Value << o.decay_embeddings;
  out << YAML::Key << "clip_norm" << YAML::Value << number(o.clip_norm);
  out << YAML::Key << "clip_value" << YAML::Value << number(o.clip_value);
  out << YAML::Key << "schedule" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "type" << YAML::Value << optim::schedule_type_name(o.schedule.type);
  out << YAML::Key << "warmup_steps" << YAML::Value << o.schedule.warmup_steps;
  if (o.schedule.type == optim::ScheduleType::cosine) {
    out << YAML::Key << "min_lr" << YAML::Value << number(o.schedule.min_lr);
  }
  if (o.schedule.type == optim::ScheduleType::step) {
    out << YAML::Key << "step_size" << YAML::Value << o.schedule.step_size;
    out << YAML::Key << "gamma" << YAML::Value << number(o.schedule.gamma);
  }
  out << YAML::EndMap << YAML::EndMap;

  const TrainConfig& t = c.train;
  out << YAML::Key << "train" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "steps" << YAML::Value << t.steps;
  out << YAML::Key << "batch_size" << YAML::Value << t.batch_size;
  out << YAML::Key << "eval_every" << YAML::Value << t.eval_every;
  out << YAML::Key << "eval_samples" << YAML::Value << t.eval_samples;
  out << YAML::Key << "threads" << YAML::Value << t.threads;
  out << YAML::Key << "checkpoint_every" << YAML::Value << t.checkpoint_every;
  out << YAML::Key << "log_every" << YAML::Value << t.log_every;
  out << YAML::Key << "loss_on" << YAML::Value << loss_on_name(t.loss_on);
  out << YAML::Key << "stop_at_seq_acc" << YAML::Value << number(t.stop_at_seq_acc);
  out << YAML::EndMap;

  out << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

std::unique_ptr<optim::Optimizer> make_optimizer(const OptimConfig& config,
                                                 std::size_t train_steps,
                                                 const std::vector<core::NamedParameter>& params) {
  optim::OptimizerOptions options;
  options.lr = config.lr;
  options.weight_decay = config.weight_decay;
  options.decay_embeddings = config.decay_embeddings;
  if (config.type == "sgd") {
    options.momentum = config.momentum;
    options.nesterov = config.nesterov;
  } else {
    options.beta1 = config.beta1;
    options.beta2 = config.beta2;
    options.eps = config.eps;
  }
  options.schedule = config.schedule;
  options.schedule.total_steps = train_steps;
  return optim::make_optimizer(config.type, params, options);
}

}  // namespace qkv::train
