// ConfigWriter: builds a YAML mapping key by key, in the order written, and prints it.
// The counterpart of ConfigNode: each section's reader has a writer beside it, and what
// they write reads back to the same options.
//
//   ConfigWriter out;
//   out.set("name", "copy");
//   out.set("lr", 3e-3);                      // numbers in their shortest exact form
//   out.set("betas", std::vector<double>{0.9, 0.98});   // a flow sequence [0.9, 0.98]
//   ConfigWriter& schedule = out.child("schedule");
//   schedule.set("type", "cosine");
//   out.set_resolved("ffn", ffn_section.options);   // given keys and defaults read
//   std::string yaml = out.str();
//
// The header is free of yaml-cpp.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "strict_yaml/config_node.hpp"

namespace qkv {

class ConfigWriter {
 public:
  ConfigWriter();
  ~ConfigWriter();
  ConfigWriter(const ConfigWriter&) = delete;
  ConfigWriter& operator=(const ConfigWriter&) = delete;

  void set(const std::string& key, const std::string& value);
  void set(const std::string& key, const char* value);
  void set(const std::string& key, bool value);
  void set(const std::string& key, int value);
  void set(const std::string& key, unsigned value);
  void set(const std::string& key, unsigned long value);
  void set(const std::string& key, double value);
  void set(const std::string& key, const std::vector<std::string>& values);
  void set(const std::string& key, const std::vector<double>& values);
  void set(const std::string& key, const std::vector<int>& values);
  // A nested mapping, written in place (the reference stays valid as long as this writer).
  ConfigWriter& child(const std::string& key);
  // The node's resolved mapping: the keys it holds and the defaults its readers used, in
  // the order they were asked for.
  void set_resolved(const std::string& key, const ConfigNode& node);
  void set_section(const std::string& key, const TypedSection& section) {
    set_resolved(key, section.options);
  }

  std::string str() const;  // block-style YAML ending in a newline

 private:
  struct Tree;
  std::unique_ptr<Tree> tree_;
  std::vector<std::unique_ptr<ConfigWriter>> children_;
};

}  // namespace qkv
