// Parsing one YAML document of a config, and the checks every tree passes before anything
// reads, copies or prints it (see load_document in state.hpp).
//
// yaml-cpp shares the node of an anchor with every alias of it, so a few hundred bytes of
// aliases can stand for 10^9 values: they cost nothing until something walks the tree
// (copying a --set value took 3 GB). The walk here counts every value as often as it is
// reached and stops at the limit, before any other walk sees the tree.
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/eventhandler.h>

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
    const std::string self = path.empty() ? std::string("the document") : quote_for_message(path);
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
    const std::string self = path.empty() ? std::string("the document") : quote_for_message(path);
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

// Notes where each document starts and builds nothing: how many documents a text holds is
// asked of yaml-cpp's parser one document at a time, at most twice. (YAML::LoadAll loops
// for ever on some malformed text, making nodes until memory runs out: found by the
// data-file fuzzer.)
class DocumentStarts : public YAML::EventHandler {
 public:
  std::vector<YAML::Mark> starts;
  void OnDocumentStart(const YAML::Mark& mark) override { starts.push_back(mark); }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t,
                const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}
};

// Where the text's second document starts, if it has one.
std::optional<YAML::Mark> second_document(const std::string& text) {
  std::istringstream in(text);
  YAML::Parser parser(in);
  DocumentStarts starts;
  for (int document = 0; document < 2 && parser.HandleNextDocument(starts); ++document) {
  }
  if (starts.starts.size() < 2) return std::nullopt;
  return starts.starts[1];
}

}  // namespace

void check_tree(const YAML::Node& node, const DocumentOrigin& origin) {
  TreeCheck(origin).node(node, origin.path, 1);
}

YAML::Node load_document(const std::string& text, const DocumentOrigin& origin) {
  YAML::Node document;
  std::optional<YAML::Mark> second;
  try {
    document = YAML::Load(text);
    second = second_document(text);
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
  if (second)
    throw ConfigError(where(origin, *second) +
                      ": a second YAML document (after '---'): a config is one document");
  if (!document.IsDefined()) return YAML::Node(YAML::NodeType::Null);
  check_tree(document, origin);
  return document;
}

}  // namespace qkv
