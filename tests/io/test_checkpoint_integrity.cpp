// Checkpoints from someone else (issue #12): non-finite values, missing checksums, every
// truncation and random damage each give a clean error naming the file, or load.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/random.hpp"
#include "core/tensor.hpp"
#include "io/checkpoint.hpp"
#include "io/safetensors.hpp"

using qkv::core::Tensor;
using qkv::io::Checkpoint;
using qkv::io::decode_checkpoint;
using qkv::io::encode_checkpoint;
using qkv::io::load_checkpoint;
using qkv::io::save_checkpoint;

namespace {

std::string temp_path(const std::string& name) { return std::string(QKV_BINARY_DIR) + "/" + name; }

// A small complete checkpoint: two weights, Adam-like state, both RNG roles.
Checkpoint small_checkpoint() {
  Checkpoint checkpoint;
  checkpoint.weights["blocks.0.attn.wq.weight"] =
      Tensor::from_vector(std::vector<float>{0.5f, -1.25f, 2.0f, 0.125f}, {2, 2});
  checkpoint.weights["head.bias"] = Tensor::from_vector(std::vector<float>{0.25f, -0.5f}, {2});
  checkpoint.optimizer_name = "adam";
  checkpoint.optimizer.tensors["head.bias.exp_avg"] =
      Tensor::from_vector(std::vector<float>{0.01f, -0.02f}, {2});
  checkpoint.optimizer.scalars["step"] = 3;
  checkpoint.step = 3;
  checkpoint.rng_states["data"] = "12345 678";
  checkpoint.rng_states["dropout"] = "9 10";
  checkpoint.config_yaml = "name: tiny\n";
  checkpoint.vocabulary = {"PAD", "SEP", "EOS", "x"};
  checkpoint.best_seq_acc = 0.5;
  checkpoint.elapsed_s = 1.5;
  return checkpoint;
}

void check_same(const std::map<std::string, Tensor>& a, const std::map<std::string, Tensor>& b) {
  REQUIRE(a.size() == b.size());
  for (const auto& [name, tensor] : a) {
    CAPTURE(name);
    REQUIRE(b.count(name) == 1);
    CHECK(b.at(name).shape() == tensor.shape());
    CHECK(b.at(name).to_vector() == tensor.to_vector());
  }
}

void check_same(const Checkpoint& a, const Checkpoint& b) {
  check_same(a.weights, b.weights);
  check_same(a.optimizer.tensors, b.optimizer.tensors);
  CHECK(a.optimizer.scalars == b.optimizer.scalars);
  CHECK(a.optimizer_name == b.optimizer_name);
  CHECK(a.step == b.step);
  CHECK(a.rng_states == b.rng_states);
  CHECK(a.config_yaml == b.config_yaml);
  CHECK(a.task_state == b.task_state);
  CHECK(a.vocabulary == b.vocabulary);
  CHECK(a.best_seq_acc == b.best_seq_acc);
  CHECK(a.elapsed_s == b.elapsed_s);
}

// The file's header as JSON and its data, to make the files other tools (or damage) make.
struct Parts {
  std::uint64_t header_bytes;  // the header's length, padding included
  nlohmann::json header;
  std::string data;
};

Parts split(const std::string& file) {
  std::uint64_t length = 0;
  std::memcpy(&length, file.data(), 8);
  return {length, nlohmann::json::parse(file.substr(8, length)), file.substr(8 + length)};
}

std::string join(const Parts& parts) {
  std::string header = parts.header.dump();
  header.append((8 - header.size() % 8) % 8, ' ');
  const std::uint64_t length = header.size();
  return std::string(reinterpret_cast<const char*>(&length), 8) + header + parts.data;
}

// A checkpoint as qkv wrote it before checksums: the same file without "qkv.crc32".
std::string without_checksums(const std::string& file) {
  Parts parts = split(file);
  REQUIRE(parts.header["__metadata__"].erase("qkv.crc32") == 1);
  return join(parts);
}

// What was written to `stream` since it was opened (a tmpfile()).
std::string contents_of(std::FILE* stream) {
  std::fflush(stream);
  std::rewind(stream);
  std::string text;
  for (int c = std::fgetc(stream); c != EOF; c = std::fgetc(stream)) text += static_cast<char>(c);
  return text;
}

// The tensor whose data holds byte `at` of the data section.
std::string tensor_at(const nlohmann::json& header, std::uint64_t at) {
  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") continue;
    if (at >= entry["data_offsets"][0].get<std::uint64_t>() &&
        at < entry["data_offsets"][1].get<std::uint64_t>())
      return name;
  }
  FAIL("no tensor holds data byte " << at);
  return "";
}

const double kNaN = std::numeric_limits<double>::quiet_NaN();
const double kInf = std::numeric_limits<double>::infinity();

}  // namespace

TEST_CASE("checkpoint: non-finite values are refused, naming the tensor") {
  const std::string path = temp_path("test_checkpoint_nonfinite.safetensors");
  Checkpoint checkpoint = small_checkpoint();
  SUBCASE("a NaN weight (was loaded, and eval printed \"loss\":null)") {
    checkpoint.weights["blocks.0.attn.wq.weight"].data<float>()[3] = static_cast<float>(kNaN);
    save_checkpoint(path, checkpoint);
    CHECK_THROWS_WITH_AS(
        load_checkpoint(path),
        doctest::Contains("weight 'blocks.0.attn.wq.weight' holds nan at element 3"),
        std::runtime_error);
  }
  SUBCASE("an infinite weight") {
    checkpoint.weights["head.bias"].data<float>()[0] = static_cast<float>(-kInf);
    save_checkpoint(path, checkpoint);
    CHECK_THROWS_WITH_AS(load_checkpoint(path),
                         doctest::Contains("weight 'head.bias' holds -inf at element 0"),
                         std::runtime_error);
  }
  SUBCASE("infinite optimizer state") {
    checkpoint.optimizer.tensors["head.bias.exp_avg"].data<float>()[1] = static_cast<float>(kInf);
    save_checkpoint(path, checkpoint);
    CHECK_THROWS_WITH_AS(
        load_checkpoint(path),
        doctest::Contains("optimizer state 'head.bias.exp_avg' holds inf at element 1"),
        std::runtime_error);
  }
  std::remove(path.c_str());
}

TEST_CASE("checkpoint: a file without checksums (an older qkv's) loads with a one-line warning") {
  const Checkpoint saved = small_checkpoint();
  const std::string file = encode_checkpoint(saved);
  std::FILE* warnings = std::tmpfile();
  REQUIRE(warnings != nullptr);
  SUBCASE("a file with checksums loads silently") {
    check_same(decode_checkpoint(file, "new.safetensors", warnings), saved);
    CHECK(contents_of(warnings).empty());
  }
  SUBCASE("without them it loads, and says so once, naming the file") {
    check_same(decode_checkpoint(without_checksums(file), "old.safetensors", warnings), saved);
    const std::string text = contents_of(warnings);
    CHECK(text ==
          "warning: checkpoint 'old.safetensors' has no checksums (written by an older qkv or "
          "another tool), so damage to it cannot be detected\n");
  }
  SUBCASE("a damaged file without them gets its error, not the warning as well") {
    std::string damaged = without_checksums(file);
    damaged[damaged.size() - 1] = '\x7f';  // the last float becomes NaN
    CHECK_THROWS_WITH_AS(decode_checkpoint(damaged, "old.safetensors", warnings),
                         doctest::Contains("holds nan"), std::runtime_error);
    CHECK(contents_of(warnings).empty());
  }
  std::fclose(warnings);
}

TEST_CASE("checkpoint: damaged data is caught by its tensor's checksum") {
  const std::string file = encode_checkpoint(small_checkpoint());
  const Parts parts = split(file);
  // The optimizer's state, once flipped, is still finite: only the checksum can tell.
  const std::uint64_t begin =
      parts.header["optim.head.bias.exp_avg"]["data_offsets"][0].get<std::uint64_t>();
  std::string damaged = file;
  damaged[8 + parts.header_bytes + begin] ^= 0x04;
  CHECK_THROWS_WITH_AS(
      decode_checkpoint(damaged, "flipped.safetensors", nullptr),
      doctest::Contains("'flipped.safetensors': tensor 'optim.head.bias.exp_avg' does not match "
                        "its checksum"),
      std::runtime_error);
}

TEST_CASE("checkpoint: metadata values are parsed with limits") {
  qkv::io::Safetensors file =
      qkv::io::decode_safetensors(encode_checkpoint(small_checkpoint()), "memory");
  SUBCASE("a 100k-deep RNG state gives a short error") {
    file.metadata["rng_states"] = std::string(100000, '[') + std::string(100000, ']');
    try {
      decode_checkpoint(qkv::io::encode_safetensors(file), "deep.safetensors", nullptr);
      FAIL("a deep rng_states was accepted");
    } catch (const std::runtime_error& error) {
      CHECK(std::string(error.what()) ==
            "checkpoint 'deep.safetensors': metadata 'rng_states' has containers nested 2 deep "
            "(the limit is 1)");
    }
  }
  SUBCASE("a key given twice") {
    file.metadata["optimizer_scalars"] = R"({"step": 3, "step": 4})";
    CHECK_THROWS_WITH_AS(
        decode_checkpoint(qkv::io::encode_safetensors(file), "twice.safetensors", nullptr),
        doctest::Contains("metadata 'optimizer_scalars' has the key 'step' twice"),
        std::runtime_error);
  }
  SUBCASE("a number too large for a double") {
    file.metadata["elapsed_s"] = "1e999";
    CHECK_THROWS_WITH_AS(
        decode_checkpoint(qkv::io::encode_safetensors(file), "huge.safetensors", nullptr),
        doctest::Contains("metadata 'elapsed_s' is not valid JSON"), std::runtime_error);
  }
  SUBCASE("a best seq_acc outside [0, 1]") {
    file.metadata["best_seq_acc"] = "1.5";
    CHECK_THROWS_WITH_AS(
        decode_checkpoint(qkv::io::encode_safetensors(file), "acc.safetensors", nullptr),
        doctest::Contains("metadata 'best_seq_acc' must be null or a number in [0, 1], found 1.5"),
        std::runtime_error);
  }
  SUBCASE("a negative run time") {
    file.metadata["elapsed_s"] = "-2";
    CHECK_THROWS_WITH_AS(
        decode_checkpoint(qkv::io::encode_safetensors(file), "time.safetensors", nullptr),
        doctest::Contains("metadata 'elapsed_s' must be a non-negative number, found -2"),
        std::runtime_error);
  }
}

TEST_CASE("checkpoint: every truncation of a small checkpoint is a clean error") {
  const std::string file = encode_checkpoint(small_checkpoint());
  for (std::size_t size = 0; size < file.size(); ++size) {
    CAPTURE(size);
    CHECK_THROWS_WITH_AS(decode_checkpoint(file.substr(0, size), "cut.safetensors", nullptr),
                         doctest::Contains("'cut.safetensors'"), std::runtime_error);
  }
}

TEST_CASE("checkpoint: random byte changes are a clean error; in the data, always a checksum's") {
  const Checkpoint saved = small_checkpoint();
  const std::string file = encode_checkpoint(saved);
  const Parts parts = split(file);
  const std::uint64_t data_begin = 8 + parts.header_bytes;
  qkv::core::Rng rng(12);
  const int flips = 300;

  SUBCASE("in the length and the header: an error, or a change that means nothing") {
    int errors = 0;
    for (int i = 0; i < flips; ++i) {
      std::string damaged = file;
      const std::uint64_t at = rng.below(data_begin);
      damaged[at] = static_cast<char>(damaged[at] ^ (1 + rng.below(255)));
      CAPTURE(at);
      try {
        // Only a whitespace change in the padding can load, and then to the same values.
        check_same(decode_checkpoint(damaged, "flipped.safetensors", nullptr), saved);
      } catch (const std::runtime_error& error) {
        CHECK(std::string(error.what()).find("'flipped.safetensors'") != std::string::npos);
        ++errors;
      }
    }
    CHECK(errors > flips * 9 / 10);  // the test flips bytes that matter
  }
  SUBCASE("in the data: the checksum of the tensor holding the byte") {
    for (int i = 0; i < flips; ++i) {
      std::string damaged = file;
      const std::uint64_t at = rng.below(parts.data.size());
      damaged[data_begin + at] = static_cast<char>(damaged[data_begin + at] ^ (1 + rng.below(255)));
      const std::string message =
          "tensor '" + tensor_at(parts.header, at) + "' does not match its checksum";
      CAPTURE(at);
      CHECK_THROWS_WITH_AS(decode_checkpoint(damaged, "flipped.safetensors", nullptr),
                           doctest::Contains(message.c_str()), std::runtime_error);
    }
  }
}

TEST_CASE("checkpoint: structured metadata holds exactly the kinds of values it should") {
  qkv::io::Safetensors file =
      qkv::io::decode_safetensors(encode_checkpoint(small_checkpoint()), "memory");
  SUBCASE("an optimizer scalar given as true (nlohmann would read 1.0)") {
    file.metadata["optimizer_scalars"] = R"({"step": true})";
    CHECK_THROWS_WITH_AS(
        decode_checkpoint(qkv::io::encode_safetensors(file), "kinds.safetensors", nullptr),
        doctest::Contains("metadata 'optimizer_scalars' must be an object of numbers, found "
                          "{\"step\": true}"),
        std::runtime_error);
  }
  SUBCASE("an RNG state given as a number") {
    file.metadata["rng_states"] = R"({"data": 5})";
    CHECK_THROWS_WITH_AS(
        decode_checkpoint(qkv::io::encode_safetensors(file), "kinds.safetensors", nullptr),
        doctest::Contains("metadata 'rng_states' must be an object of strings"),
        std::runtime_error);
  }
}
