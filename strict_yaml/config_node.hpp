// ConfigNode: a strict, path-aware reader over one YAML mapping.
//
// Every key a reader asks for (present or not) becomes a known key of that mapping; after
// reading, finish() turns any key in the file that nobody asked for into an error that
// names its full path and suggests the closest known key. Wrong types and out-of-range
// values name the path, what was expected, what was found, and the file and line the
// value came from (a tree merged from `base:` files knows which file gave each key).
//
// A node also remembers what it resolved to: every value given, and every default a
// reader fell back on (`get(key, fallback)` without the key records the fallback). A
// ConfigWriter writes that resolved mapping, so a section read by code that a config
// file never saw (a user's layer) is still written out with all its defaults.
//
//   ConfigNode root = load_config_tree("configs/copy.yaml");
//   ConfigNode model = root.child("model");
//   auto d_model = model.get<std::size_t>("d_model");      // required
//   auto heads = model.get<std::size_t>("heads", 4);       // optional with default
//   model.require(d_model % heads == 0, "d_model", "a multiple of model.heads");
//   TypedSection ffn = model.section("ffn", "feed_forward");  // `type:` + its own keys
//   root.finish();                                          // unknown keys -> ConfigError
//
// The header is free of yaml-cpp (the tree lives in config_node.cpp).
#pragma once

#include <cstddef>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace qkv {

class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// What a config may hold; beyond it, a ConfigError names the limit (hostile or broken text
// is refused before anything expands it or waits on it).
constexpr std::size_t kMaxConfigFileBytes = 1 << 20;  // a config file, and each of its bases
constexpr std::size_t kMaxConfigValues = 100000;  // keys and values, an alias each time used
constexpr std::size_t kMaxConfigDepth = 32;        // nesting levels, the root mapping is 1

struct TypedSection;

class ConfigNode {
 public:
  // An empty mapping at the root, from `source`.
  explicit ConfigNode(const std::string& source = "config");
  // One YAML document holding a mapping (or nothing); `source` names it in messages.
  // Not valid YAML, a second document, a duplicate key, a non-mapping, a key or string
  // that is not UTF-8 or holds a NUL byte, or text past the limits above is a ConfigError
  // with its position.
  static ConfigNode parse(const std::string& text, const std::string& source);
  // The same for a config that came inside someone else's file (the config a checkpoint
  // saved): its values read as usual, but its paths are only text. get_path refuses them,
  // so nothing a checkpoint names is ever opened: qkv opens only the files named on its
  // command line or in the user's own config. A reader that can do without its files
  // (the file task, restored from a checkpoint's state) asks is_foreign() first.
  static ConfigNode parse_foreign(const std::string& text, const std::string& source);
  bool is_foreign() const;

  const std::string& path() const;  // dotted path of this node ("" for the root)
  bool has(const std::string& key) const;  // also marks the key as known
  bool is_scalar(const std::string& key) const;  // present and a plain value; marks it known

  // T: bool, int, unsigned, std::size_t, std::uint64_t, double, std::string,
  // std::vector<int>, std::vector<double>, std::vector<std::string>.
  template <class T> T get(const std::string& key) const;
  template <class T> T get(const std::string& key, const T& fallback) const;
  // A string that must be one of `choices`.
  std::string get_choice(const std::string& key, const std::vector<std::string>& choices,
                         const std::string& fallback) const;
  // A file path (required), made absolute against the folder of the file the value came
  // from (the current folder for a --set override). The resolved form keeps the absolute
  // path, so a written config reads the same from anywhere. A ConfigError in a foreign
  // tree (parse_foreign).
  std::string get_path(const std::string& key) const;

  ConfigNode child(const std::string& key) const;  // a mapping (empty if absent)
  std::vector<ConfigNode> children(const std::string& key) const;  // a sequence of mappings
  // A section that names a registered implementation: a mapping whose `type:` key
  // (default `default_type`) picks it and whose other keys are that implementation's, or
  // a bare scalar as shorthand for {type: scalar}. Its keys belong to the implementation,
  // which a registry builds later: finish() on this node leaves the section out, and
  // whoever reads it calls finish() on the section's options.
  TypedSection section(const std::string& key, const std::string& default_type) const;

  // Throws ConfigError "<source>:<line>:<col>: <path.key>: expected <expected>, found <value>"
  // when !ok.
  void require(bool ok, const std::string& key, const std::string& expected) const;
  [[noreturn]] void fail(const std::string& key, const std::string& message) const;

  // Errors on keys present in the mapping (or its children) that no reader asked for.
  void finish() const;

  // Applies "dotted.key.path=value" (the value parsed as YAML) to this root, making
  // mappings on the way: what `--set` does. Errors about the values and keys it puts in
  // the tree name "--set"; its relative paths resolve against the current folder. Call it
  // before reading.
  void apply_override(const std::string& assignment);

  struct State;  // the tree, what was asked and resolved, and where each key came from

 private:
  friend class ConfigWriter;
  friend ConfigNode load_config_tree(const std::string& path);
  explicit ConfigNode(std::shared_ptr<State> state);
  std::shared_ptr<State> state_;
};

// A section naming a registered implementation (a layer, a task) and that
// implementation's own keys. type "none" is how a config leaves an optional slot empty.
struct TypedSection {
  std::string type;
  ConfigNode options;  // the section's mapping (`type:` included, already read)
};

// A config file as one tree: when its root has `base: PATH` (relative to the file), the
// base file is loaded the same way and this file's keys are merged over it (mappings key
// by key, anything else replaced). Errors keep the file and line each key came from; a
// cycle of bases, or a base that cannot be read, is a ConfigError naming the chain. The
// file must be a regular file of at most kMaxConfigFileBytes (a FIFO or a device is
// refused without waiting on it): std::runtime_error otherwise.
ConfigNode load_config_tree(const std::string& path);

// The shortest decimal text that reads back as the same double ("0.001", "3e-05").
std::string format_number(double value);

}  // namespace qkv
