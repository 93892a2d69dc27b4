// ConfigNode: a strict, path-aware reader over one YAML mapping.
//
// Every key a reader asks for (present or not) becomes a known key of that mapping; after
// reading, finish() turns any key in the file that nobody asked for into an error that
// names its full path and suggests the closest known key. Wrong types and out-of-range
// values name the path, what was expected, what was found, and the file's line and column.
//
//   ConfigNode model = root.child("model");
//   auto d_model = model.get<int>("d_model");            // required
//   auto heads = model.get<int>("heads", 4);             // optional with default
//   model.require(d_model % heads == 0, "d_model", "a multiple of model.heads");
//   model.finish();                                       // unknown keys -> ConfigError
#pragma once

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <yaml-cpp/yaml.h>

namespace qkv {

class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class ConfigNode {
 public:
  // `path` is the dotted path of this node ("" for the root); `source` names the file
  // (or "--set") for messages.
  ConfigNode(YAML::Node node, std::string path, std::string source);

  const std::string& path() const { return path_; }
  const YAML::Node& yaml() const { return node_; }
  bool has(const std::string& key) const;  // also marks the key as known

  // T: bool, int, std::size_t/unsigned, double, std::string, std::vector<int>,
  // std::vector<double>, std::vector<std::string>.
  template <class T> T get(const std::string& key) const;
  template <class T> T get(const std::string& key, const T& fallback) const;
  // A string that must be one of `choices`.
  std::string get_choice(const std::string& key, const std::vector<std::string>& choices,
                         const std::string& fallback) const;

  ConfigNode child(const std::string& key) const;  // a mapping (empty if absent)
  std::vector<ConfigNode> children(const std::string& key) const;  // a sequence of mappings

  // Throws ConfigError "<source>:<line>:<col>: <path.key>: expected <expected>, found <value>"
  // when !ok.
  void require(bool ok, const std::string& key, const std::string& expected) const;
  [[noreturn]] void fail(const std::string& key, const std::string& message) const;

  // Errors on keys present in the mapping that no reader asked for (with a suggestion).
  void finish() const;

 private:
  struct Known;
  YAML::Node node_;
  std::string path_;
  std::string source_;
  std::shared_ptr<Known> known_;  // keys asked for; shared by copies of this node
};

// The closest candidate to `word` by edit distance, or "" if none is close enough.
std::string closest_match(const std::string& word, const std::vector<std::string>& candidates);

}  // namespace qkv
