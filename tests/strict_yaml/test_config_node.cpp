// ConfigNode: strict YAML reading — typed gets, unknown keys with suggestions, duplicate
// keys, wrong types and ranges, and the file positions in every message.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "strict_yaml/closest_match.hpp"
#include "strict_yaml/config_node.hpp"

using qkv::closest_match;
using qkv::ConfigError;
using qkv::ConfigNode;

namespace {

ConfigNode parse(const std::string& text) { return ConfigNode::parse(text, "test.yaml"); }

}  // namespace

TEST_CASE("config_node: typed gets read values and fallbacks") {
  const ConfigNode root = parse(
      "name: run\n"
      "steps: 200\n"
      "lr: 3e-4\n"
      "big: 5000000000\n"
      "flag: true\n"
      "sizes: [1, 2, 3]\n"
      "betas: [0.9, 0.999]\n"
      "words: [a, b]\n"
      "model:\n"
      "  d_model: 32\n");
  CHECK(root.get<std::string>("name") == "run");
  CHECK(root.get<int>("steps") == 200);
  CHECK(root.get<double>("lr") == doctest::Approx(3e-4));
  CHECK(root.get<std::size_t>("big") == 5000000000ULL);
  CHECK(root.get<bool>("flag"));
  CHECK(root.get<std::vector<int>>("sizes") == std::vector<int>{1, 2, 3});
  CHECK(root.get<std::vector<double>>("betas") == std::vector<double>{0.9, 0.999});
  CHECK(root.get<std::vector<std::string>>("words") == std::vector<std::string>{"a", "b"});
  CHECK(root.get<int>("absent", 7) == 7);
  CHECK(root.get<double>("steps") == 200.0);  // an integer is a number
  CHECK(root.has("name"));
  CHECK_FALSE(root.has("nothing"));
  const ConfigNode model = root.child("model");
  CHECK(model.path() == "model");
  CHECK(model.get<unsigned>("d_model") == 32u);
  CHECK(root.child("missing_section").get<int>("heads", 4) == 4);
  CHECK_NOTHROW(root.finish());
}

TEST_CASE("config_node: unknown keys name the path, the position and the closest key") {
  const ConfigNode root = parse(
      "optim:\n"
      "  lr: 0.1\n"
      "  weigth_decay: 0.01\n");
  const ConfigNode optim = root.child("optim");
  optim.get<double>("lr");
  optim.get<double>("weight_decay", 0.0);
  optim.get<double>("momentum", 0.0);
  CHECK_THROWS_WITH_AS(optim.finish(),
                       "test.yaml:3:3: unknown key 'optim.weigth_decay'; "
                       "did you mean 'optim.weight_decay'?",
                       ConfigError);
  SUBCASE("finish on the root checks the children it handed out") {
    CHECK_THROWS_WITH_AS(root.finish(), doctest::Contains("did you mean 'optim.weight_decay'?"),
                         ConfigError);
  }
}

TEST_CASE("config_node: an unknown key far from every known key lists the known keys") {
  const ConfigNode root = parse("steps: 3\nzzzzzz: 1\n");
  root.get<int>("steps");
  root.get<int>("batch_size", 8);
  CHECK_THROWS_WITH_AS(root.finish(),
                       "test.yaml:2:1: unknown key 'zzzzzz' (known keys here: batch_size steps)",
                       ConfigError);
}

TEST_CASE("config_node: a top-level section nobody read is an unknown key") {
  const ConfigNode root = parse("model: {d_model: 8}\nmodle: {}\n");
  root.child("model").get<int>("d_model");
  CHECK_THROWS_WITH_AS(root.finish(), doctest::Contains("test.yaml:2:1: unknown key 'modle'; "
                                                        "did you mean 'model'?"),
                       ConfigError);
}

TEST_CASE("config_node: a child read twice shares what was asked for") {
  const ConfigNode root = parse("train:\n  steps: 3\n  batch_size: 4\n");
  root.child("train").get<int>("steps");
  root.child("train").get<int>("batch_size");
  CHECK_NOTHROW(root.finish());
}

TEST_CASE("config_node: duplicate keys are an error") {
  SUBCASE("top level") {
    CHECK_THROWS_WITH_AS(parse("seed: 1\nname: a\nseed: 2\n"),
                         "test.yaml:3:1: duplicate key 'seed' (first given at line 1)",
                         ConfigError);
  }
  SUBCASE("nested, found when the document is read (before any section is)") {
    CHECK_THROWS_WITH_AS(parse("model:\n  heads: 2\n  heads: 4\n"),
                         "test.yaml:3:3: duplicate key 'model.heads' (first given at line 2)",
                         ConfigError);
  }
  SUBCASE("in a flow mapping") {
    CHECK_THROWS_WITH_AS(parse("a: 1\nb: {x: 1, x: 2}\n"),
                         doctest::Contains("duplicate key 'b.x'"), ConfigError);
  }
}

TEST_CASE("config_node: wrong types name the path, expected, found and the position") {
  const ConfigNode root = parse(
      "steps: 3.5\n"
      "lr: fast\n"
      "flag: yes\n"
      "count: -2\n"
      "quoted: \"3\"\n"
      "sizes: 4\n"
      "list: [1, x]\n"
      "section: 5\n"
      "empty:\n"
      "huge: 1e999\n"
      "map: {a: 1}\n"
      "too_big: 5000000000\n");
  CHECK_THROWS_WITH_AS(root.get<int>("steps"),
                       "test.yaml:1:8: steps: expected an integer, found 3.5", ConfigError);
  CHECK_THROWS_WITH_AS(root.get<double>("lr"),
                       "test.yaml:2:5: lr: expected a finite number, found fast", ConfigError);
  CHECK_THROWS_WITH_AS(root.get<bool>("flag"),
                       "test.yaml:3:7: flag: expected true or false, found yes", ConfigError);
  CHECK_THROWS_WITH_AS(root.get<std::size_t>("count"),
                       "test.yaml:4:8: count: expected a non-negative integer, found -2",
                       ConfigError);
  CHECK_THROWS_WITH_AS(root.get<int>("quoted"),
                       "test.yaml:5:9: quoted: expected an integer, found the quoted string '3'",
                       ConfigError);
  CHECK(root.get<std::string>("quoted") == "3");
  CHECK_THROWS_WITH_AS(root.get<std::vector<int>>("sizes"),
                       "test.yaml:6:8: sizes: expected a sequence of integers, found 4",
                       ConfigError);
  CHECK_THROWS_WITH_AS(root.get<std::vector<int>>("list"),
                       "test.yaml:7:11: list[1]: expected an integer, found x", ConfigError);
  CHECK_THROWS_WITH_AS(root.child("section"),
                       "test.yaml:8:10: section: expected a mapping, found 5", ConfigError);
  CHECK_THROWS_WITH_AS(root.get<int>("empty", 1),
                       "test.yaml:9:1: empty: expected an integer, found nothing (null)",
                       ConfigError);
  CHECK_THROWS_WITH_AS(root.get<double>("huge"), doctest::Contains("found 1e999"), ConfigError);
  CHECK_THROWS_WITH_AS(root.get<int>("map"),
                       "test.yaml:11:6: map: expected an integer, found a mapping {a: 1}",
                       ConfigError);
  CHECK_THROWS_WITH_AS(root.get<int>("too_big"),
                       "test.yaml:12:10: too_big: expected an integer, found 5000000000",
                       ConfigError);
}

TEST_CASE("config_node: a missing required key names its path") {
  const ConfigNode root = parse("model:\n  heads: 2\n");
  CHECK_THROWS_WITH_AS(root.child("model").get<int>("d_model"),
                       doctest::Contains("model.d_model: required key is missing"), ConfigError);
  CHECK_THROWS_WITH_AS(root.child("optim").get<double>("lr"),
                       "test.yaml: optim.lr: required key is missing", ConfigError);
  // A misspelling of the missing key is pointed out where it stands.
  const ConfigNode misspelt = parse("model:\n  d_model: 32\n  head: 2\n");
  CHECK_THROWS_WITH_AS(misspelt.child("model").get<int>("heads"),
                       "test.yaml:2:3: model.heads: required key is missing; found 'head' "
                       "(test.yaml:3:3): did you mean 'heads'?",
                       ConfigError);
}

TEST_CASE("config_node: choices, require and fail") {
  const ConfigNode root = parse("optim:\n  type: adamm\n  lr: -1\nmodel: {d_model: 30, heads: 4}\n");
  const ConfigNode optim = root.child("optim");
  CHECK_THROWS_WITH_AS(optim.get_choice("type", {"sgd", "adam", "adamw"}, "adam"),
                       "test.yaml:2:9: optim.type: expected one of sgd, adam, adamw, found adamm; "
                       "did you mean 'adam'?",
                       ConfigError);
  CHECK(root.child("train").get_choice("loss_on", {"answer", "all"}, "answer") == "answer");
  const double lr = optim.get<double>("lr");
  CHECK_THROWS_WITH_AS(optim.require(lr > 0, "lr", "a positive number"),
                       "test.yaml:3:7: optim.lr: expected a positive number, found -1",
                       ConfigError);
  CHECK_NOTHROW(optim.require(true, "lr", "anything"));
  const ConfigNode model = root.child("model");
  CHECK_THROWS_WITH_AS(model.require(30 % 4 == 0, "d_model", "a multiple of model.heads (4)"),
                       "test.yaml:4:18: model.d_model: expected a multiple of model.heads (4), "
                       "found 30",
                       ConfigError);
  CHECK_THROWS_WITH_AS(model.fail("heads", "must not exceed d_model"),
                       "test.yaml:4:29: model.heads: must not exceed d_model", ConfigError);
}

TEST_CASE("config_node: children reads a sequence of mappings with indexed paths") {
  const ConfigNode root = parse(
      "blocks:\n"
      "  - {type: attention, heads: 2}\n"
      "  - {type: ffn, hidden: 64, hiden: 3}\n");
  const auto blocks = root.children("blocks");
  REQUIRE(blocks.size() == 2);
  CHECK(blocks[0].path() == "blocks[0]");
  CHECK(blocks[0].get<std::string>("type") == "attention");
  blocks[0].get<int>("heads");
  blocks[1].get<std::string>("type");
  blocks[1].get<int>("hidden");
  CHECK_THROWS_WITH_AS(root.finish(),
                       "test.yaml:3:29: unknown key 'blocks[1].hiden'; did you mean "
                       "'blocks[1].hidden'?",
                       ConfigError);
  CHECK_THROWS_WITH_AS(parse("blocks: [1, 2]\n").children("blocks"),
                       doctest::Contains("blocks[0]: expected a mapping, found 1"), ConfigError);
  CHECK(parse("a: 1\n").children("blocks").empty());
}

TEST_CASE("config_node: values set by an override (no file position) name only --set") {
  ConfigNode root = parse("optim:\n  lr: 0.1\n");
  root.apply_override("optim.lr=abc");
  CHECK_THROWS_WITH_AS(root.child("optim").get<double>("lr"),
                       "--set: optim.lr: expected a finite number, found abc", ConfigError);
  ConfigNode again = parse("optim:\n  lr: 0.1\n");
  again.apply_override("optim.lrr=0.2");
  again.child("optim").get<double>("lr");
  CHECK_THROWS_WITH_AS(again.finish(), "--set: unknown key 'optim.lrr'; did you mean 'optim.lr'?",
                       ConfigError);
  CHECK_THROWS_WITH_AS(parse("a: 1\n").apply_override("a.b=2"),
                       "--set: a.b=2: a is not a mapping (it holds 1)", ConfigError);
  CHECK_THROWS_WITH_AS(parse("a: 1\n").apply_override("a"),
                       "--set: expected key.path=value, found 'a'", ConfigError);
}

TEST_CASE("config_node: closest_match suggests only close candidates") {
  const std::vector<std::string> keys = {"d_model", "heads", "layers", "weight_decay", "lr"};
  CHECK(closest_match("d_modle", keys) == "d_model");
  CHECK(closest_match("haeds", keys) == "heads");     // a transposition is one edit
  CHECK(closest_match("Layers", keys) == "layers");  // case does not matter
  CHECK(closest_match("weight_decy", keys) == "weight_decay");
  CHECK(closest_match("ln", keys) == "lr");
  CHECK(closest_match("wd", keys).empty());  // two edits rewrite a two-letter word
  CHECK(closest_match("temperature", keys).empty());
  CHECK(closest_match("weight", keys) == "weight_decay");  // a shortened key
  CHECK(closest_match("we", keys).empty());               // too short to mean a prefix
  CHECK(closest_match("x", {}).empty());
}
