// ConfigWriter: an ordered YAML mapping built in code, printed block style.
#include "strict_yaml/config_writer.hpp"

#include "strict_yaml/state.hpp"

namespace qkv {

struct ConfigWriter::Tree {
  YAML::Node map{YAML::NodeType::Map};
};

namespace {

template <class E, class F> YAML::Node flow_sequence(const std::vector<E>& values, F&& text) {
  YAML::Node out(YAML::NodeType::Sequence);
  for (const E& v : values) out.push_back(YAML::Node(text(v)));
  out.SetStyle(YAML::EmitterStyle::Flow);
  return out;
}

}  // namespace

ConfigWriter::ConfigWriter() : tree_(std::make_unique<Tree>()) {}
ConfigWriter::~ConfigWriter() = default;

void ConfigWriter::set(const std::string& key, const std::string& value) {
  tree_->map[key] = YAML::Node(value);
}
void ConfigWriter::set(const std::string& key, const char* value) { set(key, std::string(value)); }
void ConfigWriter::set(const std::string& key, bool value) { set(key, value ? "true" : "false"); }
void ConfigWriter::set(const std::string& key, int value) { set(key, std::to_string(value)); }
void ConfigWriter::set(const std::string& key, unsigned value) { set(key, std::to_string(value)); }
void ConfigWriter::set(const std::string& key, unsigned long value) {
  set(key, std::to_string(value));
}
void ConfigWriter::set(const std::string& key, double value) { set(key, format_number(value)); }

void ConfigWriter::set(const std::string& key, const std::vector<std::string>& values) {
  tree_->map[key] = flow_sequence(values, [](const std::string& v) { return v; });
}
void ConfigWriter::set(const std::string& key, const std::vector<double>& values) {
  tree_->map[key] = flow_sequence(values, [](double v) { return format_number(v); });
}
void ConfigWriter::set(const std::string& key, const std::vector<int>& values) {
  tree_->map[key] = flow_sequence(values, [](int v) { return std::to_string(v); });
}

ConfigWriter& ConfigWriter::child(const std::string& key) {
  children_.push_back(std::make_unique<ConfigWriter>());
  ConfigWriter& nested = *children_.back();
  tree_->map[key] = nested.tree_->map;  // the same node: later writes to it show here
  return nested;
}

void ConfigWriter::set_resolved(const std::string& key, const ConfigNode& node) {
  tree_->map[key] = resolved_tree(*node.state_);
}

std::string ConfigWriter::str() const {
  YAML::Emitter out;
  out << tree_->map;
  return std::string(out.c_str()) + "\n";
}

}  // namespace qkv
