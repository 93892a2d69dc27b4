// TaskRegistry: name -> factory, with errors that name the config section, the built-in
// tasks, and make_task's checks.
#include "tasks/registry.hpp"

#include <stdexcept>

#include "strict_yaml/closest_match.hpp"
#include "strict_yaml/text.hpp"
#include "tasks/agreement.hpp"
#include "tasks/copy.hpp"
#include "tasks/file.hpp"
#include "tasks/induction.hpp"
#include "tasks/recall.hpp"
#include "tasks/reverse.hpp"
#include "tasks/sort.hpp"

namespace qkv::tasks {

void TaskRegistry::add(const std::string& type, TaskFactory factory) {
  if (type.empty()) throw std::invalid_argument("task registry: the type name is empty");
  if (!factory) {
    throw std::invalid_argument("task registry: the factory for '" + type + "' is empty");
  }
  if (!factories_.emplace(type, std::move(factory)).second) {
    throw std::invalid_argument("task registry: task type '" + type +
                                "' is already registered (each name can be registered once)");
  }
}

bool TaskRegistry::contains(const std::string& type) const {
  return factories_.count(type) != 0;
}

std::vector<std::string> TaskRegistry::types() const {
  std::vector<std::string> out;
  for (const auto& entry : factories_) out.push_back(entry.first);
  return out;  // std::map keeps them sorted
}

std::unique_ptr<Task> TaskRegistry::create(const TypedSection& section, LossOn loss_on,
                                           const std::string& state) const {
  const ConfigNode& options = section.options;
  const std::string& type = section.type;
  // Read (and so record) the type in the section itself: that is what a writer of the
  // section writes, so it must be the type built.
  const std::string recorded = options.get<std::string>("type", type);
  if (recorded != type) {
    options.fail("type", "the section names task type '" + quote_for_message(recorded) + "' but '" +
                             quote_for_message(type) +
                             "' was asked for");
  }
  const auto it = factories_.find(type);
  if (it == factories_.end()) {
    const std::vector<std::string> known = types();
    std::string message = "unknown task type '" + quote_for_message(type) + "' (known types: ";
    for (std::size_t i = 0; i < known.size(); ++i) message += (i ? ", " : "") + known[i];
    message += ")";
    const std::string suggestion = closest_match(type, known);
    if (!suggestion.empty()) message += "; did you mean '" + suggestion + "'?";
    options.fail("type", message);
  }
  std::unique_ptr<Task> task = it->second(options, loss_on, state);
  if (!task) options.fail("type", "the factory for task type '" + type + "' returned no task");
  return task;
}

void register_builtin_tasks(TaskRegistry& registry) {
  registry.add("copy", make_copy_task);
  registry.add("reverse", make_reverse_task);
  registry.add("sort", make_sort_task);
  registry.add("agreement", make_agreement_task);
  registry.add("recall", make_recall_task);
  registry.add("induction", make_induction_task);
  registry.add("file", make_file_task);
}

TaskRegistry& task_registry() {
  static TaskRegistry registry = [] {
    TaskRegistry built;
    register_builtin_tasks(built);
    return built;
  }();
  return registry;
}

RegisterTask::RegisterTask(const std::string& type, TaskFactory factory) {
  task_registry().add(type, std::move(factory));
}

std::unique_ptr<Task> make_task(const TypedSection& section, LossOn loss_on,
                                const std::string& state, const TaskRegistry& registry) {
  const ConfigNode& options = section.options;
  std::unique_ptr<Task> task;
  try {
    task = registry.create(section, loss_on, state);
    options.finish();
    if (!state.empty() && task->state().empty()) {
      options.fail("type", "task " + section.type + " takes no saved state: it saves none (got '" +
                               quote_for_message(state) + "')");
    }
    if (state.empty()) {
      // Fails now, not at the first step or evaluation, when the prompt space is too small
      // to be split into training and evaluation prompts.
      core::Rng probe(0);
      task->sample(1, probe);
      task->eval_examples(1, 0);
    }
  } catch (const std::invalid_argument& e) {
    options.fail("type", e.what());
  }
  return task;
}

}  // namespace qkv::tasks
