// Hostile config text (issue #12): alias bombs, deep nesting, a second document, huge
// unknown keys, invalid UTF-8 and NUL bytes, and config files that are not regular files.
// Each is a one-line ConfigError (or runtime_error for an unreadable file) that names the
// source, found before anything expands or blocks.
#include <doctest/doctest.h>

#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "strict_yaml/closest_match.hpp"
#include "strict_yaml/config_node.hpp"
#include "strict_yaml/text.hpp"

using qkv::ConfigError;
using qkv::ConfigNode;

namespace {

namespace fs = std::filesystem;

fs::path scratch(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / ("qkv-hostile-yaml-" + name);
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

// Nine levels of ten aliases each: 10^9 values once expanded, a few hundred bytes as text.
std::string alias_bomb_flow() {
  std::string text = "[&a0 [x, x, x, x, x, x, x, x, x, x]";
  for (int level = 1; level < 9; ++level) {
    const std::string below = "*a" + std::to_string(level - 1);
    text += ", &a" + std::to_string(level) + " [" + below;
    for (int i = 1; i < 10; ++i) text += ", " + below;
    text += "]";
  }
  return text + "]";
}

std::string nested(std::size_t depth) {
  return "a: " + std::string(depth, '[') + std::string(depth, ']') + "\n";
}

}  // namespace

TEST_CASE("hostile yaml: an alias bomb is refused by its expanded size, from a file or --set") {
  SUBCASE("in a file") {
    CHECK_THROWS_WITH_AS(ConfigNode::parse("bomb: " + alias_bomb_flow() + "\n", "bomb.yaml"),
                         doctest::Contains("bomb.yaml: the document holds more than 100000 "
                                           "values (aliases counted as often as they are used)"),
                         ConfigError);
  }
  SUBCASE("through --set") {
    ConfigNode root = ConfigNode::parse("name: x\n", "run.yaml");
    CHECK_THROWS_WITH_AS(root.apply_override("name=" + alias_bomb_flow()),
                         doctest::Contains("--set: name=[&a0 [x, x, x"), ConfigError);
    CHECK_THROWS_WITH_AS(root.apply_override("name=" + alias_bomb_flow()),
                         doctest::Contains("holds more than 100000 values"), ConfigError);
  }
  SUBCASE("a few aliases are fine") {
    const ConfigNode root =
        ConfigNode::parse("lr: &rate 0.5\nschedule: {min_lr: *rate}\n", "anchors.yaml");
    CHECK(root.child("schedule").get<double>("min_lr") == 0.5);
  }
}

TEST_CASE("hostile yaml: nesting past the limit has its own message, not 'bad file'") {
  CHECK_NOTHROW(ConfigNode::parse(nested(30), "deep.yaml"));
  for (const std::size_t depth : {std::size_t{33}, std::size_t{600}}) {
    CAPTURE(depth);
    try {
      ConfigNode::parse(nested(depth), "deep.yaml");
      FAIL("no error");
    } catch (const ConfigError& error) {
      const std::string message = error.what();
      CHECK(message.find("deep.yaml") == 0);
      CHECK(message.find("nests more than 32 levels deep") != std::string::npos);
      CHECK(message.find("bad file") == std::string::npos);
    }
  }
}

TEST_CASE("hostile yaml: a second document is an error, not ignored") {
  CHECK_THROWS_WITH_AS(ConfigNode::parse("name: x\n---\nname: y\n", "two.yaml"),
                       "two.yaml:2:1: a second YAML document (after '---'): a config is one "
                       "document",
                       ConfigError);
  CHECK_NOTHROW(ConfigNode::parse("---\nname: x\n...\n", "one.yaml"));
  ConfigNode root = ConfigNode::parse("name: x\n", "run.yaml");
  CHECK_THROWS_WITH_AS(root.apply_override("name=a\n---\nb"),
                       doctest::Contains("a second YAML document"), ConfigError);
}

TEST_CASE("hostile yaml: text on which yaml-cpp's LoadAll never ends is one error") {
  // Found by the data-file fuzzer (a saved task state): YAML::LoadAll made nodes until
  // memory ran out. Documents are now counted one at a time, at most two.
  const std::string text("{format: 3, max_example_le""\x0d""\x0d""\x0d""\x0d""\x0d""\x0d""\x0d""\x0d""\x0d""levocabulary: [a, c]}, c]}""\xed""\xed""\xed""\xed""\xed""\xed""\xed""\xed""\xed""\xed""\xed""\xed""\xf4""\xed""\xed""\xed""\xed""\xed""\xed""\xed""\xed""\xed""\x0a""\x0a""!""\x7f""\x7f""\x7f""\x7f""\x0d""\x0d""\x0d""\x0d""\x0d""\x0d""\x0d""\x0d""EP]}", 102);
  CHECK_THROWS_AS(ConfigNode::parse(text, "loop.yaml"), ConfigError);
}

TEST_CASE("hostile yaml: a 4 MB unknown key is named short, and the suggestion stays cheap") {
  const std::string huge(4u << 20, 'k');
  // An explicit key ("? "): YAML allows implicit keys of at most 1024 characters.
  const ConfigNode root = ConfigNode::parse("? " + huge + "\n: 1\n", "huge.yaml");
  root.has("steps");
  root.has("kkkk");
  try {
    root.finish();
    FAIL("no error");
  } catch (const ConfigError& error) {
    const std::string message = error.what();
    CHECK(message.size() < 400);
    CHECK(message.find("unknown key 'kkkkkkkk") != std::string::npos);
    CHECK(message.find("(4194304 bytes)") != std::string::npos);
  }
  // Words longer than closest_match's limit get no suggestion (the edit distance of a
  // 4 MB word to each key would take gigabytes); the prefix rule still works for short ones.
  CHECK(qkv::closest_match(huge, {"steps", "kkkk"}).empty());
  CHECK(qkv::closest_match(std::string(65, 'a'), {std::string(64, 'a')}).empty());
  CHECK(qkv::closest_match(std::string(63, 'a') + "b", {std::string(64, 'a')}) ==
        std::string(64, 'a'));
}

TEST_CASE("hostile yaml: a parser message that holds the bad byte stays one printable line") {
  // Found by the data-file fuzzer: yaml-cpp's message quoted a NUL and a newline raw.
  try {
    ConfigNode::parse(std::string("{x: 1, \0\ny: 2}", 15), "escape.yaml");
    FAIL("no error");
  } catch (const ConfigError& error) {
    const std::string message = error.what();
    CAPTURE(message);
    CHECK(message.find("escape.yaml:2:1: not valid YAML: unknown escape character: \\n") == 0);
    CHECK(message.find('\n') == std::string::npos);
    CHECK(message.find('\0') == std::string::npos);
  }
}

TEST_CASE("hostile yaml: a long or binary value is quoted short and printable") {
  const ConfigNode root =
      ConfigNode::parse("steps: " + std::string(100000, '9') + "x\nname: \"a\\x01b\"\n", "v.yaml");
  try {
    root.get<int>("steps");
    FAIL("no error");
  } catch (const ConfigError& error) {
    CHECK(std::string(error.what()).size() < 300);
    CHECK(std::string(error.what()).find("(100001 bytes)") != std::string::npos);
  }
  CHECK_THROWS_WITH_AS(root.get<int>("name"), doctest::Contains("found the quoted string 'a\\x01b'"), ConfigError);
}

TEST_CASE("hostile yaml: invalid UTF-8 and NUL bytes are refused where they are written") {
  SUBCASE("invalid UTF-8 in a value") {
    CHECK_THROWS_WITH_AS(ConfigNode::parse("name: caf\xe9\n", "latin1.yaml"),
                         "latin1.yaml:1:7: name: expected UTF-8 text, found the byte 0xe9 at "
                         "byte 3 of 'caf\\xe9'",
                         ConfigError);
  }
  SUBCASE("invalid UTF-8 in a key") {
    CHECK_THROWS_WITH_AS(ConfigNode::parse("na\xffme: x\n", "key.yaml"),
                         doctest::Contains("key.yaml:1:1: the document: expected UTF-8 text"),
                         ConfigError);
  }
  SUBCASE("a NUL byte from an escape") {
    CHECK_THROWS_WITH_AS(ConfigNode::parse("task: {train_file: \"data\\0.tsv\"}\n", "nul.yaml"),
                         doctest::Contains("nul.yaml:1:20: task.train_file: expected text "
                                           "without NUL bytes, found one at byte 4"),
                         ConfigError);
  }
  SUBCASE("through --set") {
    ConfigNode root = ConfigNode::parse("name: x\n", "run.yaml");
    CHECK_THROWS_WITH_AS(root.apply_override("name=\"a\\0\""),
                         doctest::Contains("--set: name: expected text without NUL bytes"),
                         ConfigError);
  }
  SUBCASE("under a key that holds a control byte, the key is quoted (found by the fuzzer)") {
    try {
      ConfigNode::parse("\"a\\x0bb\": \"caf\xe9\"\n", "key.yaml");
      FAIL("no error");
    } catch (const ConfigError& error) {
      const std::string message = error.what();
      CAPTURE(message);
      CHECK(std::string(error.what()).find("key.yaml:1:11: a\\x0bb: expected UTF-8 text") == 0);
    }
  }
  SUBCASE("valid UTF-8 passes") {
    CHECK(ConfigNode::parse("name: \"caf\xc3\xa9 \xe2\x9c\x93\"\n", "ok.yaml")
              .get<std::string>("name") == "caf\xc3\xa9 \xe2\x9c\x93");
  }
}

TEST_CASE("text: UTF-8 validation follows RFC 3629") {
  using qkv::first_invalid_utf8;
  const std::size_t ok = std::string::npos;
  CHECK(first_invalid_utf8("") == ok);
  CHECK(first_invalid_utf8("plain ascii") == ok);
  CHECK(first_invalid_utf8("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80") == ok);  // é € 😀
  CHECK(first_invalid_utf8("ab\x80") == 2);          // a lone continuation byte
  CHECK(first_invalid_utf8("a\xc3") == 1);           // cut short
  CHECK(first_invalid_utf8("\xc0\xaf") == 0);        // overlong '/'
  CHECK(first_invalid_utf8("\xe0\x80\xaf") == 0);    // overlong, three bytes
  CHECK(first_invalid_utf8("\xed\xa0\x80") == 0);    // a UTF-16 surrogate
  CHECK(first_invalid_utf8("\xf4\x90\x80\x80") == 0);  // above U+10FFFF
  CHECK(first_invalid_utf8("x\xf5\x80\x80\x80") == 1);
  CHECK(qkv::quote_for_message("a\tb\n\x7f", 80) == "a\\tb\\n\\x7f");
  CHECK(qkv::quote_for_message(std::string(200, 'z'), 20) == std::string(20, 'z') + "... (200 bytes)");
}

TEST_CASE("hostile yaml: a config file must be a regular file of at most 1 MiB") {
  const fs::path dir = scratch("files");
  SUBCASE("a FIFO is refused without blocking") {
    const std::string fifo = (dir / "config.yaml").string();
    REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    CHECK_THROWS_WITH_AS(qkv::load_config_tree(fifo),
                         ("config file '" + fifo + "' is not a regular file (a FIFO)").c_str(),
                         std::runtime_error);
  }
  SUBCASE("a device is refused") {
    CHECK_THROWS_WITH_AS(qkv::load_config_tree("/dev/zero"),
                         "config file '/dev/zero' is not a regular file (a character device)",
                         std::runtime_error);
  }
  SUBCASE("a base that is a device is refused") {
    const std::string child = (dir / "child.yaml").string();
    std::ofstream(child) << "base: /dev/zero\nname: x\n";
    CHECK_THROWS_WITH_AS(qkv::load_config_tree(child), doctest::Contains("not a regular file"),
                         std::exception);
  }
  SUBCASE("over the size limit") {
    const std::string big = (dir / "big.yaml").string();
    std::ofstream(big) << "name: " << std::string(1u << 20, 'x') << "\n";
    CHECK_THROWS_WITH_AS(qkv::load_config_tree(big),
                         ("config file '" + big + "' is 1048583 bytes; the limit is 1048576")
                             .c_str(),
                         std::runtime_error);
  }
  SUBCASE("missing") {
    CHECK_THROWS_WITH_AS(qkv::load_config_tree((dir / "none.yaml").string()),
                         doctest::Contains("cannot read config file"), std::runtime_error);
  }
}

TEST_CASE("hostile yaml: a foreign tree (a checkpoint's config) reads values but no paths") {
  const ConfigNode root = ConfigNode::parse_foreign(
      "task: {type: file, train_file: /etc/shadow}\n", "ckpt.safetensors (its config)");
  CHECK(root.is_foreign());
  const ConfigNode task = root.child("task");
  CHECK(task.get<std::string>("type") == "file");
  CHECK(task.is_foreign());
  CHECK_THROWS_WITH_AS(task.get_path("train_file"),
                       doctest::Contains("task.train_file: a path in a saved config is never "
                                         "opened"),
                       ConfigError);
  CHECK_FALSE(ConfigNode::parse("a: 1\n", "mine.yaml").is_foreign());
}
