// ConfigNode: strict reading of one YAML mapping (see config_node.hpp).
//
// yaml-cpp 0.7 keeps both entries of a duplicated key and answers lookups with the first,
// so duplicates are found when a document is parsed (load_document). Keys are matched by
// their scalar text, never through yaml-cpp's non-const operator[] (which would insert
// them). Scalars are parsed by our own strict rules (YAML 1.2 core schema): `yes` is not a
// bool, `3.5` is not an integer, `1e999` is not a finite number.
#include "strict_yaml/config_node.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <map>
#include <optional>

#include "strict_yaml/closest_match.hpp"
#include "strict_yaml/state.hpp"
#include "strict_yaml/text.hpp"

namespace qkv {

namespace fs = std::filesystem;

std::string join_path(const std::string& path, const std::string& key) {
  return path.empty() ? key : path + "." + key;
}

namespace {

// A short literal rendering of what the file holds, for "found ..." in messages.
std::string describe(const YAML::Node& value) {
  if (!value.IsDefined() || value.IsNull()) return "nothing (null)";
  if (value.IsScalar())
    return value.Scalar().empty() ? "an empty string" : quote_for_message(value.Scalar());
  YAML::Emitter out;
  out << YAML::Flow << value;
  std::string text = quote_for_message(out.c_str(), 1000);
  if (text.size() > 60) text = text.substr(0, 57) + "...";
  return (value.IsSequence() ? "a sequence " : "a mapping ") + text;
}

// ---- strict scalar parsing: each returns nullopt when the text is not a T ----

template <class T> struct Scalar;

template <> struct Scalar<bool> {
  static constexpr const char* expected = "true or false";
  static constexpr const char* plural = "booleans";
  static std::optional<bool> parse(const std::string& s) {
    if (s == "true" || s == "True" || s == "TRUE") return true;
    if (s == "false" || s == "False" || s == "FALSE") return false;
    return std::nullopt;
  }
};

// s as a whole as a T, by std::from_chars (decimal only; no hex, no spaces; a leading '+'
// is allowed, as YAML allows it); nullopt if anything is left over or it is out of range.
template <class T> std::optional<T> parse_whole(const std::string& s) {
  const char* begin = s.data();
  const char* end = begin + s.size();
  if (begin != end && *begin == '+') {
    ++begin;
    if (begin != end && *begin == '-') return std::nullopt;
  }
  T value{};
  const auto [stop, error] = std::from_chars(begin, end, value);
  if (begin == end || error != std::errc() || stop != end) return std::nullopt;
  return value;
}

std::optional<long long> parse_integer(const std::string& s) { return parse_whole<long long>(s); }

std::optional<unsigned long long> parse_unsigned(const std::string& s) {
  return parse_whole<unsigned long long>(s);
}

template <> struct Scalar<int> {
  static constexpr const char* expected = "an integer";
  static constexpr const char* plural = "integers";
  static std::optional<int> parse(const std::string& s) {
    const auto v = parse_integer(s);
    if (!v || *v < std::numeric_limits<int>::min() || *v > std::numeric_limits<int>::max()) {
      return std::nullopt;
    }
    return static_cast<int>(*v);
  }
};

template <class U> struct UnsignedScalar {
  static constexpr const char* expected = "a non-negative integer";
  static constexpr const char* plural = "non-negative integers";
  static std::optional<U> parse(const std::string& s) {
    const auto v = parse_unsigned(s);
    if (!v || *v > std::numeric_limits<U>::max()) return std::nullopt;
    return static_cast<U>(*v);
  }
};
template <> struct Scalar<unsigned> : UnsignedScalar<unsigned> {};
template <> struct Scalar<unsigned long> : UnsignedScalar<unsigned long> {};

template <> struct Scalar<double> {
  static constexpr const char* expected = "a finite number";
  static constexpr const char* plural = "numbers";
  static std::optional<double> parse(const std::string& s) {
    const auto v = parse_whole<double>(s);  // "inf" and "nan" parse, and are refused here
    if (!v || !std::isfinite(*v)) return std::nullopt;
    return v;
  }
};

template <> struct Scalar<std::string> {
  static constexpr const char* expected = "a string";
  static constexpr const char* plural = "strings";
  static std::optional<std::string> parse(const std::string& s) { return s; }
};

template <class T> struct IsVector : std::false_type {};
template <class E> struct IsVector<std::vector<E>> : std::true_type {};

// The value stored under `key` in a mapping (undefined if absent) and the key's position.
struct Entry {
  YAML::Node value;
  YAML::Mark key_mark = YAML::Mark::null_mark();
  bool present = false;
};

Entry find_entry(const YAML::Node& mapping, const std::string& key) {
  Entry entry;
  if (!mapping.IsDefined() || !mapping.IsMap()) return entry;
  for (auto it = mapping.begin(); it != mapping.end(); ++it) {
    if (it->first.IsScalar() && it->first.Scalar() == key) {
      entry.value = it->second;
      entry.key_mark = it->first.Mark();
      entry.present = true;
      return entry;
    }
  }
  return entry;
}

std::string where(const std::string& source, const YAML::Mark& mark) {
  if (mark.is_null()) return source;
  return source + ":" + std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1);
}

// The position to blame for a value: the value itself; its key when the value is empty
// (an empty value's mark can point past the line); none for a value built in code (an
// override), even under a key from the file; the enclosing mapping for an absent key.
YAML::Mark blame_mark(const Entry& entry, const YAML::Node& mapping) {
  if (entry.present) {
    if (entry.value.Mark().is_null()) return entry.value.Mark();
    return entry.value.IsNull() ? entry.key_mark : entry.value.Mark();
  }
  return mapping.IsDefined() ? mapping.Mark() : YAML::Mark::null_mark();
}

template <class T>
T parse_value(const YAML::Node& value, const YAML::Mark& mark, const std::string& full_path,
              const std::string& source) {
  if constexpr (IsVector<T>::value) {
    using E = typename T::value_type;
    if (!value.IsSequence()) {
      throw ConfigError(where(source, mark) + ": " + full_path + ": expected a sequence of " +
                        Scalar<E>::plural + ", found " + describe(value));
    }
    T out;
    for (std::size_t i = 0; i < value.size(); ++i) {
      const YAML::Node element = value[i];
      const YAML::Mark element_mark = element.Mark().is_null() ? mark : element.Mark();
      out.push_back(parse_value<E>(element, element_mark,
                                   full_path + "[" + std::to_string(i) + "]", source));
    }
    return out;
  } else {
    std::optional<T> parsed;
    if (value.IsScalar() && !(value.Tag() == "!" && !std::is_same_v<T, std::string>)) {
      parsed = Scalar<T>::parse(value.Scalar());
    }
    if (!parsed) {
      std::string found = describe(value);
      if (value.IsScalar() && value.Tag() == "!") found = "the quoted string '" + found + "'";
      throw ConfigError(where(source, mark) + ": " + full_path + ": expected " +
                        Scalar<T>::expected + ", found " + found);
    }
    return *parsed;
  }
}


// What a default looks like in the resolved tree.
YAML::Node plain(bool v) { return YAML::Node(v ? "true" : "false"); }
YAML::Node plain(int v) { return YAML::Node(std::to_string(v)); }
YAML::Node plain(unsigned v) { return YAML::Node(std::to_string(v)); }
YAML::Node plain(unsigned long v) { return YAML::Node(std::to_string(v)); }
YAML::Node plain(double v) { return YAML::Node(format_number(v)); }
YAML::Node plain(const std::string& v) { return YAML::Node(v); }
template <class E> YAML::Node plain(const std::vector<E>& values) {
  YAML::Node out(YAML::NodeType::Sequence);
  for (const E& v : values) out.push_back(plain(v));
  out.SetStyle(YAML::EmitterStyle::Flow);
  return out;
}

// A copy of a value as plain YAML: no positions, no tags, scalar sequences in flow style.
YAML::Node plain_copy(const YAML::Node& value) {
  switch (value.Type()) {
    case YAML::NodeType::Scalar: return YAML::Node(value.Scalar());
    case YAML::NodeType::Sequence: {
      YAML::Node out(YAML::NodeType::Sequence);
      bool scalars = true;
      for (const auto& element : value) {
        out.push_back(plain_copy(element));
        scalars = scalars && element.IsScalar();
      }
      if (scalars) out.SetStyle(YAML::EmitterStyle::Flow);
      return out;
    }
    case YAML::NodeType::Map: {
      YAML::Node out(YAML::NodeType::Map);
      for (const auto& pair : value) out[pair.first.Scalar()] = plain_copy(pair.second);
      return out;
    }
    default: return YAML::Node(YAML::NodeType::Null);
  }
}

using State = ConfigNode::State;

const std::string& source_of(const State& s, const std::string& key_path) {
  return s.sources->of(key_path);
}

// blame_mark, falling back on the state's own position for a mapping built in code (the
// shorthand `ffn: none` has no mapping of its own to point at).
YAML::Mark blame(const State& s, const Entry& entry) {
  const YAML::Mark mark = blame_mark(entry, s.node);
  return entry.present || !mark.is_null() ? mark : s.mark;
}

std::string where_key(const State& s, const std::string& key, const Entry& entry) {
  const std::string full = join_path(s.path, key);
  return where(source_of(s, full), blame(s, entry)) + ": " + full;
}

std::shared_ptr<State> child_state(const State& parent, const std::string& key,
                                   const YAML::Node& node, const YAML::Mark& mark) {
  auto state = std::make_shared<State>();
  state->node = node;
  state->path = join_path(parent.path, key);
  state->sources = parent.sources;
  state->mark = mark;
  return state;
}

}  // namespace

std::string format_number(double value) {
  char buffer[32];
  for (int precision = 1; precision <= 17; ++precision) {
    std::snprintf(buffer, sizeof buffer, "%.*g", precision, value);
    if (std::strtod(buffer, nullptr) == value) break;
  }
  return buffer;
}

YAML::Node resolved_tree(const State& s) {
  YAML::Node out(YAML::NodeType::Map);
  for (const std::string& key : s.keys) {
    if (const auto c = s.child.find(key); c != s.child.end()) {
      out[key] = resolved_tree(*c->second);
    } else if (const auto q = s.sequence.find(key); q != s.sequence.end()) {
      YAML::Node sequence(YAML::NodeType::Sequence);
      for (const auto& element : q->second) sequence.push_back(resolved_tree(*element));
      out[key] = sequence;
    } else if (const auto r = s.resolved.find(key); r != s.resolved.end()) {
      out[key] = r->second;
    } else if (const Entry entry = find_entry(s.node, key); entry.present) {
      out[key] = plain_copy(entry.value);
    }
  }
  return out;
}

ConfigNode::ConfigNode(const std::string& source) : state_(std::make_shared<State>()) {
  state_->sources = std::make_shared<Sources>();
  state_->sources->root = source;
}

ConfigNode::ConfigNode(std::shared_ptr<State> state) : state_(std::move(state)) {}

ConfigNode ConfigNode::parse(const std::string& text, const std::string& source) {
  const YAML::Node tree = load_document(text, {source, source, "", true, "the document"});
  if (tree.IsDefined() && !tree.IsNull() && !tree.IsMap()) {
    throw ConfigError(where(source, tree.Mark()) + ": the document: expected a mapping, found " +
                      describe(tree));
  }
  ConfigNode root(source);
  root.state_->node = tree;
  root.state_->sources->folders[source] = fs::current_path().string();
  return root;
}

ConfigNode ConfigNode::parse_foreign(const std::string& text, const std::string& source) {
  ConfigNode root = parse(text, source);
  root.state_->sources->foreign = true;
  root.state_->sources->folders.clear();  // no folder of the user's to resolve against
  return root;
}

bool ConfigNode::is_foreign() const { return state_->sources->foreign; }

const std::string& ConfigNode::path() const { return state_->path; }

bool ConfigNode::has(const std::string& key) const {
  state_->ask(key);
  return find_entry(state_->node, key).present;
}

bool ConfigNode::is_scalar(const std::string& key) const {
  state_->ask(key);
  const Entry entry = find_entry(state_->node, key);
  return entry.present && entry.value.IsScalar();
}

template <class T> T ConfigNode::get(const std::string& key) const {
  const State& s = *state_;
  state_->ask(key);
  const Entry entry = find_entry(s.node, key);
  if (!entry.present) {
    // A key in the file that is close to the missing one is most likely its misspelling.
    std::string hint;
    std::vector<std::string> present;
    if (s.node.IsMap())
      for (auto it = s.node.begin(); it != s.node.end(); ++it)
        if (it->first.IsScalar()) present.push_back(it->first.Scalar());
    const std::string near = closest_match(key, present);
    if (!near.empty()) {
      const std::string near_path = join_path(s.path, near);
      hint = "; found '" + quote_for_message(near) + "' (" +
             where(source_of(s, near_path), find_entry(s.node, near).key_mark) +
             "): did you mean '" + key + "'?";
    }
    throw ConfigError(where_key(s, key, entry) + ": required key is missing" + hint);
  }
  const std::string full = join_path(s.path, key);
  return parse_value<T>(entry.value, blame(s, entry), full, source_of(s, full));
}

template <class T> T ConfigNode::get(const std::string& key, const T& fallback) const {
  State& s = *state_;
  s.ask(key);
  const Entry entry = find_entry(s.node, key);
  if (!entry.present) {
    s.resolved[key] = plain(fallback);
    return fallback;
  }
  const std::string full = join_path(s.path, key);
  return parse_value<T>(entry.value, blame(s, entry), full, source_of(s, full));
}

std::string ConfigNode::get_choice(const std::string& key, const std::vector<std::string>& choices,
                                   const std::string& fallback) const {
  const std::string value = get<std::string>(key, fallback);
  if (std::find(choices.begin(), choices.end(), value) != choices.end()) return value;
  std::string expected = "one of ";
  for (std::size_t i = 0; i < choices.size(); ++i) {
    expected += (i ? ", " : "") + choices[i];
  }
  std::string message = where_key(*state_, key, find_entry(state_->node, key)) + ": expected " +
                        expected + ", found " + quote_for_message(value);
  const std::string suggestion = closest_match(value, choices);
  if (!suggestion.empty()) message += "; did you mean '" + suggestion + "'?";
  throw ConfigError(message);
}

std::string ConfigNode::get_path(const std::string& key) const {
  // Resolved once, when first read: later reads give the same file even if the current
  // folder (the base of a --set path) has changed since.
  if (const auto it = state_->resolved.find(key); it != state_->resolved.end())
    return it->second.Scalar();
  const std::string value = get<std::string>(key);
  if (is_foreign())
    fail(key, "a path in a saved config is never opened (qkv opens only the files named on "
              "its command line or in your own config)");
  const std::string& source = source_of(*state_, join_path(state_->path, key));
  const fs::path folder = state_->sources->folder_of(source);
  const fs::path p(value);
  const std::string resolved =
      (p.is_absolute() ? p : fs::absolute(folder / p)).lexically_normal().string();
  state_->resolved[key] = YAML::Node(resolved);
  return resolved;
}

ConfigNode ConfigNode::child(const std::string& key) const {
  State& s = *state_;
  s.ask(key);
  auto& record = s.child[key];
  if (record) return ConfigNode(record);
  const Entry entry = find_entry(s.node, key);
  const YAML::Node value = entry.present ? entry.value : YAML::Node(YAML::NodeType::Null);
  if (entry.present && !value.IsNull() && !value.IsMap()) {
    s.child.erase(key);
    throw ConfigError(where_key(s, key, entry) + ": expected a mapping, found " + describe(value));
  }
  // An absent section has no position of its own: messages about it name the source only.
  record = child_state(s, key, value, entry.present ? blame(s, entry) : YAML::Mark::null_mark());
  return ConfigNode(record);
}

std::vector<ConfigNode> ConfigNode::children(const std::string& key) const {
  State& s = *state_;
  s.ask(key);
  const Entry entry = find_entry(s.node, key);
  std::vector<ConfigNode> result;
  if (!entry.present || entry.value.IsNull()) return result;
  if (!entry.value.IsSequence()) {
    throw ConfigError(where_key(s, key, entry) + ": expected a sequence of mappings, found " +
                      describe(entry.value));
  }
  auto& records = s.sequence[key];
  for (std::size_t i = 0; i < entry.value.size(); ++i) {
    const YAML::Node element = entry.value[i];
    const std::string element_key = key + "[" + std::to_string(i) + "]";
    if (!element.IsMap()) {
      throw ConfigError(where(source_of(s, join_path(s.path, element_key)), element.Mark()) + ": " +
                        join_path(s.path, element_key) + ": expected a mapping, found " +
                        describe(element));
    }
    if (records.size() <= i) records.push_back(child_state(s, element_key, element, element.Mark()));
    result.push_back(ConfigNode(records[i]));
  }
  return result;
}

TypedSection ConfigNode::section(const std::string& key, const std::string& default_type) const {
  State& s = *state_;
  const Entry entry = find_entry(s.node, key);
  if (!entry.present || !entry.value.IsScalar()) {
    const ConfigNode options = child(key);
    options.state_->deferred = true;
    return {options.get<std::string>("type", default_type), options};
  }
  // `key: name` stands for {type: name}: a mapping of its own records the type, so the
  // section is written (and read back) in its long form.
  s.ask(key);
  auto& record = s.child[key];
  if (!record) {
    record = child_state(s, key, YAML::Node(YAML::NodeType::Null), blame(s, entry));
    record->deferred = true;
    record->ask("type");
    record->resolved["type"] = YAML::Node(entry.value.Scalar());
  }
  return {entry.value.Scalar(), ConfigNode(record)};
}

void ConfigNode::require(bool ok, const std::string& key, const std::string& expected) const {
  if (ok) return;
  const Entry entry = find_entry(state_->node, key);
  const std::string found = entry.present ? describe(entry.value) : "no value (the default)";
  throw ConfigError(where_key(*state_, key, entry) + ": expected " + expected + ", found " + found);
}

void ConfigNode::fail(const std::string& key, const std::string& message) const {
  throw ConfigError(where_key(*state_, key, find_entry(state_->node, key)) + ": " + message);
}

void ConfigNode::finish() const {
  const State& s = *state_;
  if (s.node.IsMap()) {
    for (auto it = s.node.begin(); it != s.node.end(); ++it) {
      const std::string key = it->first.Scalar();
      if (s.asked(key)) continue;
      const std::string full = join_path(s.path, key);
      std::string message = where(source_of(s, full), it->first.Mark()) + ": unknown key '" +
                            quote_for_message(full) + "'";
      const std::string suggestion = closest_match(key, s.keys);
      if (!suggestion.empty()) {
        message += "; did you mean '" + join_path(s.path, suggestion) + "'?";
      } else if (!s.keys.empty()) {
        std::vector<std::string> sorted = s.keys;
        std::sort(sorted.begin(), sorted.end());
        message += " (known keys here:";
        for (const auto& k : sorted) message += " " + k;
        message += ")";
      }
      throw ConfigError(message);
    }
  }
  for (const auto& entry : s.child)
    if (!entry.second->deferred) ConfigNode(entry.second).finish();
  for (const auto& entry : s.sequence)
    for (const auto& element : entry.second) ConfigNode(element).finish();
}

template bool ConfigNode::get<bool>(const std::string&) const;
template int ConfigNode::get<int>(const std::string&) const;
template unsigned ConfigNode::get<unsigned>(const std::string&) const;
template unsigned long ConfigNode::get<unsigned long>(const std::string&) const;
template double ConfigNode::get<double>(const std::string&) const;
template std::string ConfigNode::get<std::string>(const std::string&) const;
template std::vector<int> ConfigNode::get<std::vector<int>>(const std::string&) const;
template std::vector<double> ConfigNode::get<std::vector<double>>(const std::string&) const;
template std::vector<std::string> ConfigNode::get<std::vector<std::string>>(
    const std::string&) const;

template bool ConfigNode::get<bool>(const std::string&, const bool&) const;
template int ConfigNode::get<int>(const std::string&, const int&) const;
template unsigned ConfigNode::get<unsigned>(const std::string&, const unsigned&) const;
template unsigned long ConfigNode::get<unsigned long>(const std::string&,
                                                      const unsigned long&) const;
template double ConfigNode::get<double>(const std::string&, const double&) const;
template std::string ConfigNode::get<std::string>(const std::string&, const std::string&) const;
template std::vector<int> ConfigNode::get<std::vector<int>>(const std::string&,
                                                            const std::vector<int>&) const;
template std::vector<double> ConfigNode::get<std::vector<double>>(
    const std::string&, const std::vector<double>&) const;
template std::vector<std::string> ConfigNode::get<std::vector<std::string>>(
    const std::string&, const std::vector<std::string>&) const;

}  // namespace qkv
