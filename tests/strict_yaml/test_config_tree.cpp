// Config trees: `base:` inheritance (merging, the file and line each key came from, cycles),
// the resolved mapping a ConfigWriter writes (given keys and defaults), and typed sections.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "strict_yaml/config_node.hpp"
#include "strict_yaml/config_writer.hpp"

using qkv::ConfigError;
using qkv::ConfigNode;
using qkv::ConfigWriter;
using qkv::load_config_tree;

namespace {

namespace fs = std::filesystem;

// A fresh folder under the system's temp folder for one test's files.
fs::path scratch(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / ("qkv-config-tree-" + name);
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

void write(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream(path) << text;
}

}  // namespace

TEST_CASE("config_tree: a base file's keys are merged under the file's own") {
  const fs::path dir = scratch("merge");
  write(dir / "copy.yaml",
        "name: copy\n"
        "model:\n"
        "  d_model: 64\n"
        "  heads: 2\n"
        "  attention: {wq: learned, causal: true}\n"
        "train: {steps: 100}\n");
  write(dir / "ablations" / "none.yaml",
        "base: ../copy.yaml\n"
        "name: none\n"
        "model:\n"
        "  attention: {wq: identity}\n");
  const ConfigNode root = load_config_tree((dir / "ablations" / "none.yaml").string());
  CHECK(root.get<std::string>("name") == "none");
  const ConfigNode model = root.child("model");
  CHECK(model.get<int>("d_model") == 64);
  CHECK(model.child("attention").get<std::string>("wq") == "identity");
  CHECK(model.child("attention").get<bool>("causal"));
  CHECK(root.child("train").get<int>("steps") == 100);
  CHECK_FALSE(root.has("base"));
}

TEST_CASE("config_tree: errors name the file and line the key came from") {
  const fs::path dir = scratch("blame");
  write(dir / "base.yaml", "model:\n  d_model: 64\n  heads: two\n");
  write(dir / "child.yaml", "base: base.yaml\nmodel:\n  d_model: sixty\n  extra: 1\n");
  const std::string base = (dir / "base.yaml").string();
  const std::string child = (dir / "child.yaml").string();
  const ConfigNode root = load_config_tree(child);
  const ConfigNode model = root.child("model");
  CHECK_THROWS_WITH_AS(model.get<int>("heads"),
                       (base + ":3:10: model.heads: expected an integer, found two").c_str(),
                       ConfigError);
  CHECK_THROWS_WITH_AS(model.get<int>("d_model"),
                       (child + ":3:12: model.d_model: expected an integer, found sixty").c_str(),
                       ConfigError);
  CHECK_THROWS_WITH_AS(root.finish(),
                       (child + ":4:3: unknown key 'model.extra' (known keys here: d_model "
                                "heads)").c_str(),
                       ConfigError);
}

TEST_CASE("config_tree: relative paths resolve against the folder of the file that gave them") {
  const fs::path dir = scratch("paths");
  write(dir / "data" / "base.yaml", "task: {train_file: train.tsv}\n");
  write(dir / "child.yaml", "base: data/base.yaml\ntask: {eval_file: eval.tsv}\n");
  const ConfigNode task = load_config_tree((dir / "child.yaml").string()).child("task");
  CHECK(task.get_path("train_file") == (dir / "data" / "train.tsv").string());
  CHECK(task.get_path("eval_file") == (dir / "eval.tsv").string());
}

TEST_CASE("config_tree: a cycle of bases, a missing base and a bad base are errors") {
  const fs::path dir = scratch("cycle");
  write(dir / "a.yaml", "base: b.yaml\nname: a\n");
  write(dir / "b.yaml", "base: a.yaml\nname: b\n");
  CHECK_THROWS_WITH_AS(load_config_tree((dir / "a.yaml").string()),
                       doctest::Contains("b.yaml:1:7: base: a cycle of bases: "), ConfigError);
  write(dir / "self.yaml", "base: self.yaml\n");
  CHECK_THROWS_WITH_AS(load_config_tree((dir / "self.yaml").string()),
                       doctest::Contains("a cycle of bases"), ConfigError);
  write(dir / "lost.yaml", "base: nowhere.yaml\n");
  CHECK_THROWS_WITH_AS(load_config_tree((dir / "lost.yaml").string()),
                       doctest::Contains("lost.yaml:1:7: base: cannot read config file"),
                       ConfigError);
  write(dir / "list.yaml", "base: [a.yaml]\n");
  CHECK_THROWS_WITH_AS(load_config_tree((dir / "list.yaml").string()),
                       doctest::Contains("base: expected the path of a config file"), ConfigError);
  CHECK_THROWS_AS(load_config_tree((dir / "absent.yaml").string()), std::runtime_error);
}

TEST_CASE("config_writer: a node's resolved mapping holds given values and defaults read") {
  const ConfigNode root = ConfigNode::parse(
      "optim:\n  lr: 3e-3\n  betas: [0.9, 0.98]\n  schedule: {type: cosine}\n", "test.yaml");
  const ConfigNode optim = root.child("optim");
  optim.get<std::string>("type", "adamw");
  optim.get<double>("lr", 1e-3);
  optim.get<std::vector<double>>("betas", {0.9, 0.999});
  optim.get<double>("eps", 1e-8);
  optim.child("schedule").get<std::string>("type", "constant");
  optim.child("schedule").get<std::size_t>("warmup_steps", 0);
  ConfigWriter out;
  out.set("name", "run");
  out.set_resolved("optim", optim);
  CHECK(out.str() ==
        "name: run\n"
        "optim:\n"
        "  type: adamw\n"
        "  lr: 3e-3\n"
        "  betas: [0.9, 0.98]\n"
        "  eps: 1e-08\n"
        "  schedule:\n"
        "    type: cosine\n"
        "    warmup_steps: 0\n");
  // What was written reads back to the same values.
  const ConfigNode back = ConfigNode::parse(out.str(), "written.yaml").child("optim");
  CHECK(back.get<double>("eps") == 1e-8);
  CHECK(back.get<std::string>("type") == "adamw");
}

TEST_CASE("config_node: a typed section is a mapping with type:, or a scalar shorthand") {
  const ConfigNode root = ConfigNode::parse(
      "ffn: none\npositional: sinusoidal_positions\nattention: {wq: identity}\nnorm: {type: rms, "
      "eps: 1e-6}\n",
      "test.yaml");
  CHECK(root.section("ffn", "feed_forward").type == "none");
  CHECK(root.section("positional", "learned_positions").type == "sinusoidal_positions");
  const qkv::TypedSection attention = root.section("attention", "multi_head_attention");
  CHECK(attention.type == "multi_head_attention");
  CHECK(attention.options.get<std::string>("wq") == "identity");
  const qkv::TypedSection norm = root.section("norm", "layer_norm");
  CHECK(norm.type == "rms");
  CHECK(norm.options.get<double>("eps") == 1e-6);
  CHECK(root.section("absent", "layer_norm").type == "layer_norm");
  CHECK_THROWS_WITH_AS(root.section("ffn", "feed_forward").options.fail("type", "unknown"),
                       "test.yaml:1:6: ffn.type: unknown", ConfigError);
  CHECK_NOTHROW(root.finish());
  // A section's keys are its implementation's: the root leaves them to it.
  const ConfigNode slots = ConfigNode::parse("slot: {type: x, size: 3}\n", "t.yaml");
  const qkv::TypedSection unread = slots.section("slot", "y");
  CHECK_NOTHROW(slots.finish());
  CHECK_THROWS_WITH_AS(unread.options.finish(),
                       "t.yaml:1:17: unknown key 'slot.size' (known keys here: type)", ConfigError);
  ConfigWriter out;
  out.set_section("ffn", root.section("ffn", "feed_forward"));
  out.set_section("attention", attention);
  CHECK(out.str() == "ffn:\n  type: none\nattention:\n  type: multi_head_attention\n  wq: identity\n");
}
