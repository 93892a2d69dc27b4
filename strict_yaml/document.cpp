// Parsing one YAML document of a config, and the checks every tree passes before anything
// reads, copies or prints it (see load_document in state.hpp).
//
// yaml-cpp shares the node of an anchor with every alias of it, so a few hundred bytes of
// aliases can stand for 10^9 values: they cost nothing until something walks the tree
// (copying a --set value took 3 GB). The walk here counts every value as often as it is
// reached and stops at the limit, before any other walk sees the tree.
#include <map>
#include <string>
#include <vector>

#include <yaml-cpp/depthguard.h>

#include "strict_yaml/state.hpp"
#include "strict_yaml/text.hpp"

namespace qkv {

namespace {

std::string where(const DocumentOrigin& origin, const YAML::Mark& mark) {
  if (!origin.positions || mark.is_null()) return origin.label;
  return origin.source + ":" + std::to_string(mark.line + 1) + ":" +
         std::to_string(mark.column + 1);
}

std::string where_key(const DocumentOrigin& origin, const YAML::Mark& mark) {
  if (!origin.positions || mark.is_null()) return origin.source;
  return where(origin, mark);
}

std::string describe_key(const YAML::Node& key) {
  if (key.IsScalar()) return quote_for_message(key.Scalar(), 60);
  YAML::Emitter out;
  out << YAML::Flow << key;
  return std::string(key.IsSequence() ? "a sequence " : "a mapping ") +
         quote_for_message(out.c_str(), 60);
}

class TreeCheck {
 public:
  explicit TreeCheck(const DocumentOrigin& origin) : origin_(origin) {}

  void node(const YAML::Node& node, const std::string& path, std::size_t depth) {
    count();
    if (node.IsScalar()) {
      text(node, path);
      return;
    }
    if (!node.IsMap() && !node.IsSequence()) return;
    if (depth > kMaxConfigDepth)
      throw ConfigError(where(origin_, node.Mark()) + ": " + origin_.noun + " nests more than " +
                        std::to_string(kMaxConfigDepth) + " levels deep (the limit)");
    if (node.IsSequence()) {
      for (std::size_t i = 0; i < node.size(); ++i)
        this->node(node[i], path + "[" + std::to_string(i) + "]", depth + 1);
      return;
    }
    mapping(node, path, depth);
  }

 private:
  void count() {
    if (++values_ <= kMaxConfigValues) return;
    throw ConfigError(origin_.label + ": " + origin_.noun + " holds more than " +
                      std::to_string(kMaxConfigValues) +
                      " values (aliases counted as often as they are used)");
  }

  // Every string is written again later (the resolved config, a checkpoint's JSON).
  void text(const YAML::Node& scalar, const std::string& path) {
    const std::string& value = scalar.Scalar();
    const std::string self = path.empty() ? std::string("the document") : path;
    if (const std::size_t nul = value.find('\0'); nul != std::string::npos)
      throw ConfigError(where_key(origin_, scalar.Mark()) + ": " + self +
                        ": expected text without NUL bytes, found one at byte " +
                        std::to_string(nul));
    const std::string problem = text_problem(value);
    if (!problem.empty())
      throw ConfigError(where_key(origin_, scalar.Mark()) + ": " + self +
                        ": expected UTF-8 text, found " + problem + " of '" +
                        quote_for_message(value, 60) + "'");
  }

  void mapping(const YAML::Node& node, const std::string& path, std::size_t depth) {
    const std::string self = path.empty() ? std::string("the document") : path;
    std::map<std::string, YAML::Mark> seen;
    for (auto it = node.begin(); it != node.end(); ++it) {
      const YAML::Node key = it->first;  // a copy: it->first is a temporary
      if (!key.IsScalar())
        throw ConfigError(where_key(origin_, key.Mark()) + ": " + self +
                          ": expected a plain key, found " + describe_key(key));
      count();
      text(key, path);
      const std::string& name = key.Scalar();
      const auto [first, inserted] = seen.emplace(name, key.Mark());
      if (!inserted) {
        std::string message = where_key(origin_, key.Mark()) + ": duplicate key '" +
                              quote_for_message(join_path(path, name)) + "'";
        if (origin_.positions && !first->second.is_null())
          message += " (first given at line " + std::to_string(first->second.line + 1) + ")";
        throw ConfigError(message);
      }
      this->node(it->second, join_path(path, name), depth + 1);
    }
  }

  const DocumentOrigin& origin_;
  std::size_t values_ = 0;
};

}  // namespace

void check_tree(const YAML::Node& node, const DocumentOrigin& origin) {
  TreeCheck(origin).node(node, origin.path, 1);
}

YAML::Node load_document(const std::string& text, const DocumentOrigin& origin) {
  std::vector<YAML::Node> documents;
  try {
    documents = YAML::LoadAll(text);
  } catch (const YAML::DeepRecursion& e) {
    throw ConfigError(where(origin, e.mark) + ": " + origin.noun + " nests more than " +
                      std::to_string(kMaxConfigDepth) + " levels deep (the limit)");
  } catch (const YAML::Exception& e) {
    // yaml-cpp's message can hold the offending byte itself (a NUL, a newline).
    const std::string why = quote_for_message(e.msg, 200);
    if (!origin.positions)
      throw ConfigError(origin.label + ": " + origin.noun + " is not YAML (" + why + ")");
    throw ConfigError(where(origin, e.mark) + ": not valid YAML: " + why);
  }
  if (documents.size() > 1)
    throw ConfigError(where(origin, documents[1].Mark()) +
                      ": a second YAML document (after '---'): a config is one document");
  if (documents.empty()) return YAML::Node(YAML::NodeType::Null);
  check_tree(documents[0], origin);
  return documents[0];
}

}  // namespace qkv
