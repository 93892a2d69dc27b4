// Loading a config file into one tree: `base:` inheritance, --set overrides, and the
// table of where each key came from (see config_node.hpp).
#include <algorithm>
#include <filesystem>
#include <sstream>

#include "strict_yaml/config_node.hpp"
#include "strict_yaml/state.hpp"
#include "strict_yaml/text.hpp"

namespace qkv {

namespace fs = std::filesystem;

namespace {

std::string where(const std::string& source, const YAML::Mark& mark) {
  if (mark.is_null()) return source;
  return source + ":" + std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1);
}

std::string parent_key(const std::string& path) {
  const std::size_t cut = path.find_last_of(".[");
  return cut == std::string::npos ? std::string() : path.substr(0, cut);
}

// Keys are matched by their text; yaml-cpp's non-const operator[] would insert them.
YAML::Node find(const YAML::Node& mapping, const std::string& key) {
  for (auto it = mapping.begin(); it != mapping.end(); ++it)
    if (it->first.Scalar() == key) return it->second;
  return YAML::Node(YAML::NodeType::Undefined);
}

YAML::Node parse_file(const std::string& path, const std::string& text) {
  YAML::Node tree = load_document(text, {path, path, "", true, "the document"});
  if (!tree.IsDefined() || tree.IsNull()) return YAML::Node(YAML::NodeType::Map);
  if (!tree.IsMap())
    throw ConfigError(where(path, tree.Mark()) + ": the document: expected a mapping");
  return tree;
}

// `over`'s keys merged into `into` (mappings key by key, anything else replaced).
void merge(YAML::Node into, const YAML::Node& over, const std::string& path,
           const std::string& source, Sources& sources) {
  for (auto it = over.begin(); it != over.end(); ++it) {
    const std::string key = it->first.Scalar();
    const std::string key_path = join_path(path, key);
    YAML::Node existing = find(into, key);
    if (existing.IsDefined() && existing.IsMap() && it->second.IsMap()) {
      merge(existing, it->second, key_path, source, sources);
      continue;
    }
    // The key node itself moves over, so that messages about it keep its file position.
    if (existing.IsDefined()) into.remove(key);
    into.force_insert(it->first, it->second);
    sources.assign(key_path, it->second, source);
  }
}

// The tree of `path` with its bases merged under it; `chain` holds the files above it.
YAML::Node load_tree(const std::string& path, std::vector<std::string>& chain, Sources& sources) {
  YAML::Node tree = parse_file(path, read_text_file(path, kMaxConfigFileBytes, "config file"));
  const fs::path folder = fs::absolute(fs::path(path)).parent_path();
  sources.folders[path] = folder.string();

  const YAML::Node base = find(tree, "base");
  if (!base.IsDefined()) {
    sources.assign("", tree, path);
    return tree;
  }
  if (!base.IsScalar() || base.Scalar().empty())
    throw ConfigError(where(path, base.Mark()) + ": base: expected the path of a config file");
  const fs::path base_path = (folder / base.Scalar()).lexically_normal();
  const std::string identity = fs::weakly_canonical(base_path).string();
  chain.push_back(fs::weakly_canonical(path).string());
  for (const std::string& seen : chain) {
    if (seen != identity) continue;
    std::string cycle;
    for (const std::string& file : chain) cycle += file + " -> ";
    throw ConfigError(where(path, base.Mark()) + ": base: a cycle of bases: " + cycle + identity);
  }
  YAML::Node merged;
  try {
    merged = load_tree(base_path.string(), chain, sources);
  } catch (const ConfigError&) {
    throw;
  } catch (const std::runtime_error& e) {  // the base file itself cannot be read
    throw ConfigError(where(path, base.Mark()) + ": base: " + e.what());
  }
  chain.pop_back();
  tree.remove("base");
  merge(merged, tree, "", path, sources);
  return merged;
}

// How many leading keys of `path` the tree holds (with a value) from `i` on. Handles are
// copied, never assigned: assigning a yaml-cpp handle overwrites the node it refers to.
std::size_t held_prefix(const YAML::Node& node, const std::vector<std::string>& path,
                        std::size_t i) {
  if (i == path.size() || !node.IsMap()) return i;
  const YAML::Node next = find(node, path[i]);
  if (!next.IsDefined() || next.IsNull()) return i;
  return held_prefix(next, path, i + 1);
}

// The node at the first `n` keys of `path` (they exist).
YAML::Node node_at(const YAML::Node& node, const std::vector<std::string>& path, std::size_t i,
                   std::size_t n) {
  return i == n ? node : node_at(find(node, path[i]), path, i + 1, n);
}

// A value from --set without file positions, so messages name "--set" alone for it.
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
    throw ConfigError("--set: " + quote_for_message(text) + ": " + quote_for_message(prefix) +
                      " is not a mapping (it holds " +
                      (next.IsScalar() ? quote_for_message(next.Scalar()) : std::string("a sequence")) +
                      ")");
  }
  set_path(next, path, i + 1, value, text);
}

}  // namespace

const std::string& Sources::of(const std::string& path) const {
  for (std::string p = path;; p = parent_key(p)) {
    if (const auto it = by_path.find(p); it != by_path.end()) return it->second;
    if (p.empty()) return root;
  }
}

std::string Sources::folder_of(const std::string& source) const {
  const auto it = folders.find(source);
  return it != folders.end() ? it->second : fs::current_path().string();
}

void Sources::assign(const std::string& path, const YAML::Node& value, const std::string& source) {
  const std::string prefix = path.empty() ? "" : path + ".";
  for (auto it = by_path.begin(); it != by_path.end();) {
    const bool under = it->first.compare(0, prefix.size(), prefix) == 0;
    it = under ? by_path.erase(it) : std::next(it);
  }
  if (!path.empty()) by_path[path] = source;
  if (!value.IsMap()) return;
  for (auto it = value.begin(); it != value.end(); ++it)
    assign(join_path(path, it->first.Scalar()), it->second, source);
}

ConfigNode load_config_tree(const std::string& path) {
  auto state = std::make_shared<ConfigNode::State>();
  state->sources = std::make_shared<Sources>();
  state->sources->root = path;
  std::vector<std::string> chain;
  state->node = load_tree(path, chain, *state->sources);
  return ConfigNode(state);
}

void ConfigNode::apply_override(const std::string& text) {
  const std::size_t equals = text.find('=');
  if (equals == std::string::npos || equals == 0)
    throw ConfigError("--set: expected key.path=value, found '" + quote_for_message(text) + "'");
  const std::string dotted = text.substr(0, equals);
  std::vector<std::string> path;
  std::stringstream keys(dotted);
  for (std::string key; std::getline(keys, key, '.');) path.push_back(key);
  if (dotted.back() == '.') path.push_back("");
  for (const std::string& key : path)
    if (key.empty())
      throw ConfigError("--set: '" + quote_for_message(text) + "' has an empty key in its path");
  // Checked (its size with aliases expanded, its text) before without_marks copies it.
  const YAML::Node value = without_marks(load_document(
      text.substr(equals + 1),
      {"--set", "--set: " + quote_for_message(text, 60), dotted, false, "the value"}));
  State& s = *state_;
  if (!s.node.IsDefined() || s.node.IsNull()) s.node = YAML::Node(YAML::NodeType::Map);
  // The mappings the override creates on the way come from --set too ('tarin' in
  // --set tarin.steps=3 is its typo, not the file's).
  const std::size_t held = held_prefix(s.node, path, 0);
  const std::size_t owned = std::min(held + 1, path.size());
  set_path(s.node, path, 0, value, text);
  std::string owned_path = path[0];
  for (std::size_t i = 1; i < owned; ++i) owned_path += "." + path[i];
  s.sources->assign(owned_path, node_at(s.node, path, 0, owned), "--set");
  s.child.clear();  // handed-out children may hold the replaced mappings
  s.sequence.clear();
}

}  // namespace qkv
