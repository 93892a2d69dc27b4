// ConfigNode's state (internal to strict_yaml/): the YAML tree, where each key came from,
// and what readers asked for and resolved. Shared by config_node.cpp (reading),
// config_tree.cpp (loading, bases, overrides) and config_writer.cpp (writing).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "strict_yaml/config_node.hpp"

namespace qkv {

// The file (or "--set") that gave each key path of a tree, for messages and for resolving
// relative paths. One table serves the whole tree.
struct Sources {
  std::string root;                            // the file the tree was loaded from
  bool foreign = false;                        // ConfigNode::parse_foreign: paths are text
  std::map<std::string, std::string> by_path;  // "model.d_model" -> "configs/copy.yaml"
  std::map<std::string, std::string> folders;  // source -> the folder its relative paths use

  // The source of the longest recorded prefix of `path` (the root file if none).
  const std::string& of(const std::string& path) const;
  // The folder relative paths from `source` are resolved against.
  std::string folder_of(const std::string& source) const;
  // Every key path of `value` (at `path`) now comes from `source`; what the old value
  // under `path` had recorded is forgotten.
  void assign(const std::string& path, const YAML::Node& value, const std::string& source);
};

// One mapping of the tree, as readers see it. Copies of a ConfigNode share it, and so do
// the ConfigNodes handed out for the same child key, so that what is asked and resolved
// is recorded once.
struct ConfigNode::State {
  YAML::Node node;  // the mapping; Null when the section is absent or a scalar shorthand
  std::string path;
  std::shared_ptr<Sources> sources;
  YAML::Mark mark = YAML::Mark::null_mark();  // blamed for absent keys when node has none
  bool deferred = false;  // a typed section: its consumer calls finish() after reading it

  std::vector<std::string> keys;  // asked for, in the order first asked
  std::map<std::string, YAML::Node> resolved;  // defaults used and rewritten values, by key
  std::map<std::string, std::shared_ptr<State>> child;
  std::map<std::string, std::vector<std::shared_ptr<State>>> sequence;

  void ask(const std::string& key) {
    for (const std::string& k : keys)
      if (k == key) return;
    keys.push_back(key);
  }
  bool asked(const std::string& key) const {
    for (const std::string& k : keys)
      if (k == key) return true;
    return false;
  }
};

std::string join_path(const std::string& path, const std::string& key);

// The mapping a reader resolved: each key asked for, in that order, with the value given
// (children resolved in turn) or the default used. Plain YAML, without file positions.
YAML::Node resolved_tree(const ConfigNode::State& state);

// Where a piece of YAML text came from, for load_document's messages.
struct DocumentOrigin {
  std::string source;  // the file, or "--set": what Sources records for its keys
  std::string label;   // names the whole text in messages: the file, or "--set: key=value"
  std::string path;    // the key path the text's root sits at ("" for a file)
  bool positions;      // whether the text's line:column mean anything to the user
  std::string noun;    // "the document" or "the value"
};

// The text's one YAML document (Null if it has none), checked by check_tree. A second
// document, nesting past kMaxConfigDepth (yaml-cpp's own limit included) and text that
// is not YAML are ConfigErrors naming the origin.
YAML::Node load_document(const std::string& text, const DocumentOrigin& origin);

// Throws ConfigError, before anything else walks the tree: more than kMaxConfigValues
// values (aliases expanded), nesting past kMaxConfigDepth, a key or string that is not
// UTF-8 or holds a NUL byte, a non-scalar or duplicate key in a mapping.
void check_tree(const YAML::Node& node, const DocumentOrigin& origin);

}  // namespace qkv
