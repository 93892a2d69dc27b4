// TaskRegistry: `type:` names of the task section -> factories that build the task from
// its keys, so a config names built-in and user-defined tasks alike:
//
//   task: {type: copy, symbols: 16, min_len: 8, max_len: 16}
//   task: {type: palindrome, length: 9}     # a user's task, registered by name
//
// A factory reads its own keys through the ConfigNode it is given, with its defaults and
// range checks (ConfigErrors at the key): a misspelled key is caught by finish(), and
// every default it falls back on is recorded, so ConfigWriter::set_section writes the
// whole resolved section with no writer of the task's own. An unknown type is a
// ConfigError naming the known types and the closest match; registering a name twice is a
// std::invalid_argument.
//
// The built-in tasks (copy, reverse, sort, agreement, recall, file: one file each) are
// registered by an explicit call inside task_registry(), not by static objects, which a
// static library's linker would drop. A user's task registers with one line in its own
// .cpp (link that .cpp's object into the program):
//
//   static const qkv::tasks::RegisterTask registration("palindrome", make_palindrome_task);
//
// where make_palindrome_task is a TaskFactory:
//
//   std::unique_ptr<Task> make_palindrome_task(const ConfigNode& options, LossOn loss_on,
//                                              const std::string& state) {
//     return std::make_unique<PalindromeTask>(options.get<std::size_t>("length", 9), loss_on);
//   }
//
// Then:
//
//   auto task = make_task(root.section("task", "copy"), LossOn::answer);
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "strict_yaml/config_node.hpp"
#include "tasks/task.hpp"

namespace qkv::tasks {

using qkv::ConfigNode;
using qkv::TypedSection;

// `options` is the task's section (its `type:` already read). `state` is a checkpoint's
// saved Task::state() for this task, "" for a fresh run; a task that saves no state
// ignores it (make_task refuses a non-empty one for it).
using TaskFactory = std::function<std::unique_ptr<Task>(const ConfigNode& options,
                                                        LossOn loss_on,
                                                        const std::string& state)>;

class TaskRegistry {
 public:
  // Throws std::invalid_argument if `type` is empty, taken, or the factory is empty.
  void add(const std::string& type, TaskFactory factory);
  bool contains(const std::string& type) const;
  std::vector<std::string> types() const;  // sorted

  // Builds the task `section.type` names, from its options (ConfigError on an unknown
  // type or a factory that returns none).
  std::unique_ptr<Task> create(const TypedSection& section, LossOn loss_on,
                               const std::string& state) const;

 private:
  std::map<std::string, TaskFactory> factories_;
};

// Adds copy, reverse, sort, agreement, recall and file.
void register_builtin_tasks(TaskRegistry& registry);

// The process-wide registry, with the built-ins, that make_task uses by default.
TaskRegistry& task_registry();

// Registers a task type with the process-wide registry when constructed: one static object
// per user task.
struct RegisterTask {
  RegisterTask(const std::string& type, TaskFactory factory);
};

// The task a config's section describes, checked at once: its keys (finish(): unknown
// keys are errors), a non-empty `state` for a task that saves none, and one training and
// one evaluation draw (so that a prompt space too small to hold out evaluation prompts
// fails now, not at the first step). Every error is a ConfigError at the section's keys;
// a task's own std::invalid_argument is reported at `type`. With a `state`, no draw is
// made: a restored task may read its data only when it first needs it.
std::unique_ptr<Task> make_task(const TypedSection& section, LossOn loss_on,
                                const std::string& state = "",
                                const TaskRegistry& registry = task_registry());

}  // namespace qkv::tasks
