// ConfigNode: strict reading of one YAML mapping (see config_node.hpp).
//
// yaml-cpp 0.7 keeps both entries of a duplicated key and answers lookups with the first,
// so duplicates are found here by walking the mapping's pairs when a node is made. Keys
// are matched by their scalar text, never through yaml-cpp's non-const operator[] (which
// would insert them). Scalars are parsed by our own strict rules (YAML 1.2 core schema):
// `yes` is not a bool, `3.5` is not an integer, `1e999` is not a finite number.
#include "strict_yaml/config_node.hpp"

#include <algorithm>
#include <charconv>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>

namespace qkv {

// What readers asked for in one mapping, shared by every copy of its ConfigNode, plus the
// same record for each child mapping handed out, so finish() on a parent checks the
// children too and asking for the same child twice reads into one record.
struct ConfigNode::Known {
  std::vector<std::string> keys;  // in the order first asked (suggestions prefer earlier)
  std::map<std::string, std::shared_ptr<Known>> child;
  std::map<std::string, std::vector<std::shared_ptr<Known>>> sequence;

  void add(const std::string& key) {
    if (std::find(keys.begin(), keys.end(), key) == keys.end()) keys.push_back(key);
  }
  bool contains(const std::string& key) const {
    return std::find(keys.begin(), keys.end(), key) != keys.end();
  }
};

namespace {

std::string join_path(const std::string& path, const std::string& key) {
  return path.empty() ? key : path + "." + key;
}

// A short literal rendering of what the file holds, for "found ..." in messages.
std::string describe(const YAML::Node& value) {
  if (!value.IsDefined() || value.IsNull()) return "nothing (null)";
  if (value.IsScalar()) return value.Scalar().empty() ? "an empty string" : value.Scalar();
  YAML::Emitter out;
  out << YAML::Flow << value;
  std::string text = out.c_str();
  if (text.size() > 60) text = text.substr(0, 57) + "...";
  return (value.IsSequence() ? "a sequence " : "a mapping ") + text;
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Optimal string alignment distance (Levenshtein plus adjacent transpositions, so
// "weigth" is one edit from "weight").
std::size_t edit_distance(const std::string& a, const std::string& b) {
  const std::size_t n = a.size(), m = b.size();
  std::vector<std::vector<std::size_t>> d(n + 1, std::vector<std::size_t>(m + 1));
  for (std::size_t i = 0; i <= n; ++i) d[i][0] = i;
  for (std::size_t j = 0; j <= m; ++j) d[0][j] = j;
  for (std::size_t i = 1; i <= n; ++i) {
    for (std::size_t j = 1; j <= m; ++j) {
      const std::size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[n][m];
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

}  // namespace

ConfigNode::ConfigNode(YAML::Node node, std::string path, std::string source)
    : node_(std::move(node)), path_(std::move(path)), source_(std::move(source)),
      known_(std::make_shared<Known>()) {
  if (!node_.IsDefined() || node_.IsNull()) return;  // an absent or empty section
  const std::string self = path_.empty() ? std::string("the document") : path_;
  if (!node_.IsMap()) {
    throw ConfigError(where(source_, node_.Mark()) + ": " + self + ": expected a mapping, found " +
                      describe(node_));
  }
  std::map<std::string, YAML::Mark> seen;
  for (auto it = node_.begin(); it != node_.end(); ++it) {
    const YAML::Node key = it->first;  // a copy: it->first is a temporary
    if (!key.IsScalar()) {
      throw ConfigError(where(source_, key.Mark()) + ": " + self + ": expected a plain key, found " +
                        describe(key));
    }
    const auto [first, inserted] = seen.emplace(key.Scalar(), key.Mark());
    if (!inserted) {
      std::string message =
          where(source_, key.Mark()) + ": duplicate key '" + join_path(path_, key.Scalar()) + "'";
      if (!first->second.is_null()) {
        message += " (first given at line " + std::to_string(first->second.line + 1) + ")";
      }
      throw ConfigError(message);
    }
  }
}

bool ConfigNode::has(const std::string& key) const {
  known_->add(key);
  return find_entry(node_, key).present;
}

template <class T> T ConfigNode::get(const std::string& key) const {
  known_->add(key);
  const Entry entry = find_entry(node_, key);
  if (!entry.present) {
    // A key in the file that is close to the missing one is most likely its misspelling.
    std::string hint;
    std::vector<std::string> present;
    if (node_.IsMap())
      for (auto it = node_.begin(); it != node_.end(); ++it)
        if (it->first.IsScalar()) present.push_back(it->first.Scalar());
    const std::string near = closest_match(key, present);
    if (!near.empty())
      hint = "; found '" + near + "' (" + where(source_, find_entry(node_, near).key_mark) +
             "): did you mean '" + key + "'?";
    throw ConfigError(where(source_, blame_mark(entry, node_)) + ": " + join_path(path_, key) +
                      ": required key is missing" + hint);
  }
  return parse_value<T>(entry.value, blame_mark(entry, node_), join_path(path_, key), source_);
}

template <class T> T ConfigNode::get(const std::string& key, const T& fallback) const {
  known_->add(key);
  const Entry entry = find_entry(node_, key);
  if (!entry.present) return fallback;
  return parse_value<T>(entry.value, blame_mark(entry, node_), join_path(path_, key), source_);
}

std::string ConfigNode::get_choice(const std::string& key, const std::vector<std::string>& choices,
                                   const std::string& fallback) const {
  const std::string value = get<std::string>(key, fallback);
  if (std::find(choices.begin(), choices.end(), value) != choices.end()) return value;
  std::string expected = "one of ";
  for (std::size_t i = 0; i < choices.size(); ++i) {
    expected += (i ? ", " : "") + choices[i];
  }
  std::string message =
      where(source_, blame_mark(find_entry(node_, key), node_)) + ": " + join_path(path_, key) +
      ": expected " + expected + ", found " + value;
  const std::string suggestion = closest_match(value, choices);
  if (!suggestion.empty()) message += "; did you mean '" + suggestion + "'?";
  throw ConfigError(message);
}

ConfigNode ConfigNode::child(const std::string& key) const {
  known_->add(key);
  const Entry entry = find_entry(node_, key);
  YAML::Node value = entry.present ? entry.value : YAML::Node(YAML::NodeType::Null);
  if (entry.present && !value.IsNull() && !value.IsMap()) {
    throw ConfigError(where(source_, blame_mark(entry, node_)) + ": " + join_path(path_, key) +
                      ": expected a mapping, found " + describe(value));
  }
  ConfigNode result(value, join_path(path_, key), source_);
  auto& record = known_->child[key];
  if (!record) record = result.known_;
  result.known_ = record;
  return result;
}

std::vector<ConfigNode> ConfigNode::children(const std::string& key) const {
  known_->add(key);
  const Entry entry = find_entry(node_, key);
  std::vector<ConfigNode> result;
  if (!entry.present || entry.value.IsNull()) return result;
  if (!entry.value.IsSequence()) {
    throw ConfigError(where(source_, blame_mark(entry, node_)) + ": " + join_path(path_, key) +
                      ": expected a sequence of mappings, found " + describe(entry.value));
  }
  auto& records = known_->sequence[key];
  for (std::size_t i = 0; i < entry.value.size(); ++i) {
    const YAML::Node element = entry.value[i];
    const std::string element_path = join_path(path_, key) + "[" + std::to_string(i) + "]";
    if (!element.IsMap()) {
      throw ConfigError(where(source_, element.Mark()) + ": " + element_path +
                        ": expected a mapping, found " + describe(element));
    }
    ConfigNode node(element, element_path, source_);
    if (records.size() <= i) records.push_back(node.known_);
    node.known_ = records[i];
    result.push_back(node);
  }
  return result;
}

void ConfigNode::require(bool ok, const std::string& key, const std::string& expected) const {
  if (ok) return;
  const Entry entry = find_entry(node_, key);
  const std::string found = entry.present ? describe(entry.value) : "no value (the default)";
  throw ConfigError(where(source_, blame_mark(entry, node_)) + ": " + join_path(path_, key) +
                    ": expected " + expected + ", found " + found);
}

void ConfigNode::fail(const std::string& key, const std::string& message) const {
  const Entry entry = find_entry(node_, key);
  throw ConfigError(where(source_, blame_mark(entry, node_)) + ": " + join_path(path_, key) +
                    ": " + message);
}

void ConfigNode::finish() const {
  if (!node_.IsDefined() || !node_.IsMap()) return;
  for (auto it = node_.begin(); it != node_.end(); ++it) {
    const std::string key = it->first.Scalar();
    if (known_->contains(key)) continue;
    std::string message =
        where(source_, it->first.Mark()) + ": unknown key '" + join_path(path_, key) + "'";
    const std::string suggestion = closest_match(key, known_->keys);
    if (!suggestion.empty()) {
      message += "; did you mean '" + join_path(path_, suggestion) + "'?";
    } else if (!known_->keys.empty()) {
      std::vector<std::string> sorted = known_->keys;
      std::sort(sorted.begin(), sorted.end());
      message += " (known keys here:";
      for (const auto& k : sorted) message += " " + k;
      message += ")";
    }
    throw ConfigError(message);
  }
  for (const auto& [key, record] : known_->child) {
    const Entry entry = find_entry(node_, key);
    if (!entry.present || !entry.value.IsMap()) continue;
    ConfigNode node(entry.value, join_path(path_, key), source_);
    node.known_ = record;
    node.finish();
  }
  for (const auto& [key, records] : known_->sequence) {
    const Entry entry = find_entry(node_, key);
    if (!entry.present || !entry.value.IsSequence()) continue;
    for (std::size_t i = 0; i < records.size() && i < entry.value.size(); ++i) {
      ConfigNode node(entry.value[i], join_path(path_, key) + "[" + std::to_string(i) + "]",
                      source_);
      node.known_ = records[i];
      node.finish();
    }
  }
}

std::string closest_match(const std::string& word, const std::vector<std::string>& candidates) {
  // Close enough: about one edit per three letters (at least two), and never a distance
  // that rewrites the whole word ("lr" is not a misspelling of "wd"). Failing that, a
  // shortened key ("warmup" for "warmup_steps") suggests the shortest key it begins.
  const std::string w = lower(word);
  const std::size_t limit = std::max<std::size_t>(2, w.size() / 3);
  std::string best;
  std::size_t best_distance = std::numeric_limits<std::size_t>::max();
  for (const auto& candidate : candidates) {
    const std::size_t d = edit_distance(w, lower(candidate));
    if (d <= limit && d < std::max(w.size(), candidate.size()) && d < best_distance) {
      best = candidate;
      best_distance = d;
    }
  }
  if (best.empty() && w.size() >= 3) {
    for (const auto& candidate : candidates) {
      if (lower(candidate).compare(0, w.size(), w) == 0 &&
          (best.empty() || candidate.size() < best.size())) {
        best = candidate;
      }
    }
  }
  return best;
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
