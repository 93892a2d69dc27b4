// safetensors: round trips, the Python library's layout, and every corrupt-file error.
#include <doctest/doctest.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/tensor.hpp"
#include "io/atomic_file.hpp"
#include "io/safetensors.hpp"

using qkv::core::DType;
using qkv::core::Tensor;
using qkv::io::decode_safetensors;
using qkv::io::encode_safetensors;
using qkv::io::read_safetensors;
using qkv::io::Safetensors;
using qkv::io::write_safetensors;

namespace {

// A file from a header text and raw data bytes, the header padded as the Python
// library pads it.
std::string make_file(std::string header, const std::string& data) {
  header.append((8 - header.size() % 8) % 8, ' ');
  std::uint64_t length = header.size();
  std::string bytes(reinterpret_cast<const char*>(&length), 8);
  return bytes + header + data;
}

template <class T>
std::string raw(const std::vector<T>& values) {
  return std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(T));
}

void check_decode_error(const std::string& bytes, const std::string& message) {
  CHECK_THROWS_WITH_AS(decode_safetensors(bytes, "bad.safetensors"),
                       doctest::Contains(message.c_str()), std::runtime_error);
  CHECK_THROWS_WITH_AS(decode_safetensors(bytes, "bad.safetensors"),
                       doctest::Contains("bad.safetensors"), std::runtime_error);
}

}  // namespace

TEST_CASE("safetensors: round trip keeps values, shapes, dtypes and metadata") {
  Safetensors original;
  original.tensors["blocks.0.attn.wq.weight"] =
      Tensor::from_vector(std::vector<float>{1.5f, -2.0f, 3.25f, 0.0f, 1e-30f, -7.0f}, {2, 3});
  original.tensors["double"] = Tensor::from_vector(std::vector<double>{0.1, -1e300}, {2});
  original.tensors["scalar"] = Tensor::scalar(42.0);
  original.tensors["empty"] = Tensor::zeros({0, 4});
  original.metadata["step"] = "17";
  original.metadata["config"] = "name: copy\nseed: 1\n";

  std::string bytes = encode_safetensors(original);
  std::uint64_t header_length = 0;
  std::memcpy(&header_length, bytes.data(), 8);
  CHECK(header_length % 8 == 0);

  Safetensors back = decode_safetensors(bytes, "memory");
  CHECK(back.metadata == original.metadata);
  REQUIRE(back.tensors.size() == original.tensors.size());
  for (const auto& [name, tensor] : original.tensors) {
    CAPTURE(name);
    const Tensor& loaded = back.tensors.at(name);
    CHECK(loaded.dtype() == tensor.dtype());
    CHECK(loaded.shape() == tensor.shape());
    CHECK(loaded.to_vector() == tensor.to_vector());
  }
  CHECK(back.tensors.at("double").dtype() == DType::f64);
  CHECK(back.tensors.at("double").to_vector()[0] == 0.1);  // bit exact, not rounded to float
}

TEST_CASE("safetensors: reads the Python library's layout") {
  // What safetensors.numpy.save_file({"b": f32[2], "a": f64[1, 2]}, metadata={"format":"pt"})
  // produces: metadata first, the data sorted by alignment then name, spaces as padding.
  std::string header =
      R"({"__metadata__":{"format":"pt"},"a":{"dtype":"F64","shape":[1,2],"data_offsets":[0,16]},)"
      R"("b":{"dtype":"F32","shape":[2],"data_offsets":[16,24]}})";
  std::string file = make_file(header, raw(std::vector<double>{0.5, -0.25}) +
                                           raw(std::vector<float>{3.0f, 4.0f}));
  Safetensors loaded = decode_safetensors(file, "python.safetensors");
  CHECK(loaded.metadata.at("format") == "pt");
  CHECK(loaded.tensors.at("a").shape() == qkv::core::Shape{1, 2});
  CHECK(loaded.tensors.at("a").to_vector() == std::vector<double>{0.5, -0.25});
  CHECK(loaded.tensors.at("b").dtype() == DType::f32);
  CHECK(loaded.tensors.at("b").to_vector() == std::vector<double>{3.0, 4.0});
  CHECK_FALSE(loaded.verified);  // no qkv checksums to verify
}

TEST_CASE("safetensors: corrupt files give an error naming the file and the problem") {
  const std::string two_floats = raw(std::vector<float>{1.0f, 2.0f});
  SUBCASE("too short") { check_decode_error(std::string("\x08\x00\x00", 3), "file too short"); }
  SUBCASE("header length past the end") {
    std::string file = make_file(R"({})", "");
    file[0] = 100;
    check_decode_error(file, "header length 100 goes past the end of the file");
  }
  SUBCASE("bad JSON") { check_decode_error(make_file(R"({"a": )", ""), "not valid JSON"); }
  SUBCASE("header not an object") {
    check_decode_error(make_file("[1, 2]", ""), "header does not start with '{'");
  }
  SUBCASE("unknown dtype") {
    check_decode_error(
        make_file(R"({"a":{"dtype":"F16","shape":[2],"data_offsets":[0,4]}})", "abcd"),
        "tensor 'a' has unsupported dtype 'F16'");
  }
  SUBCASE("missing field") {
    check_decode_error(make_file(R"({"a":{"dtype":"F32","shape":[2]}})", two_floats),
                       "tensor 'a' has no \"data_offsets\"");
  }
  SUBCASE("negative shape") {
    check_decode_error(
        make_file(R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", two_floats),
        "shape entry must be a non-negative integer");
  }
  SUBCASE("offsets out of range") {
    check_decode_error(
        make_file(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", two_floats),
        "tensor 'a' data_offsets [0, 16] go past the end of the data (8 bytes)");
  }
  SUBCASE("offsets reversed") {
    check_decode_error(
        make_file(R"({"a":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}})", two_floats),
        "end before they begin");
  }
  SUBCASE("shape and size disagree") {
    check_decode_error(
        make_file(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", two_floats),
        "tensor 'a' has shape [3] of F32 (12 bytes) but data_offsets [0, 8] span 8 bytes");
  }
  SUBCASE("overlapping tensors") {
    check_decode_error(make_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                                 R"("b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                                 two_floats),
                       "tensors 'a' [0, 8] and 'b' [4, 8] overlap");
  }
  SUBCASE("bytes that belong to no tensor") {
    check_decode_error(
        make_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", two_floats),
        "data bytes [4, 8] belong to no tensor");
  }
  SUBCASE("metadata value not a string") {
    check_decode_error(make_file(R"({"__metadata__":{"step":3}})", ""),
                       "__metadata__ entry 'step' must be a string");
  }
}

TEST_CASE("safetensors: files on disk") {
  const std::string path = std::string(QKV_BINARY_DIR) + "/test_safetensors_file.safetensors";
  SUBCASE("write then read, no temp file left behind") {
    Safetensors contents;
    contents.tensors["w"] = Tensor::from_vector(std::vector<float>{1, 2, 3}, {3});
    contents.metadata["k"] = "v";
    write_safetensors(path, contents);
    Safetensors back = read_safetensors(path);
    CHECK(back.tensors.at("w").to_vector() == std::vector<double>{1, 2, 3});
    CHECK(back.metadata.at("k") == "v");
    CHECK(std::fopen((path + ".tmp").c_str(), "rb") == nullptr);
    std::remove(path.c_str());
  }
  SUBCASE("a missing file names the path") {
    CHECK_THROWS_WITH_AS(read_safetensors(path + ".missing"),
                         doctest::Contains("test_safetensors_file.safetensors.missing"),
                         std::runtime_error);
  }
  SUBCASE("a truncated file names the path") {
    Safetensors contents;
    contents.tensors["w"] = Tensor::zeros({8});
    std::string bytes = encode_safetensors(contents);
    qkv::io::write_file_atomically(path, bytes.substr(0, bytes.size() - 3));
    CHECK_THROWS_WITH_AS(read_safetensors(path), doctest::Contains("go past the end of the data"),
                         std::runtime_error);
    std::remove(path.c_str());
  }
}

TEST_CASE("safetensors: write_safetensors streams exactly the bytes encode_safetensors makes") {
  // Pieces smaller and larger than the writer's 64 KiB gathering, an empty tensor and f64:
  // the file is the header, then each tensor's values in name order, with no copy between.
  const std::string path = std::string(QKV_BINARY_DIR) + "/test_safetensors_streamed.safetensors";
  Safetensors contents;
  std::vector<float> large(100000);
  for (std::size_t i = 0; i < large.size(); ++i) large[i] = static_cast<float>(i) * 0.5f - 7.0f;
  contents.tensors["a.large"] = Tensor::from_vector(large, {400, 250});
  contents.tensors["b.bias"] = Tensor::from_vector(std::vector<float>{1, -2, 3}, {3});
  contents.tensors["c.empty"] = Tensor::zeros({0, 5});
  contents.tensors["d.double"] = Tensor::from_vector(std::vector<double>(20000, 0.1), {20000});
  contents.metadata["step"] = "3";
  write_safetensors(path, contents);
  CHECK(qkv::io::read_file(path) == encode_safetensors(contents));
  std::remove(path.c_str());
}

TEST_CASE("safetensors: what write_safetensors refuses creates no file, not even a temp one") {
  const std::filesystem::path folder = std::filesystem::path(QKV_BINARY_DIR) / "test_safetensors_refused";
  std::filesystem::remove_all(folder);
  std::filesystem::create_directories(folder);
  Safetensors contents;
  contents.tensors["w"] = Tensor::zeros({2});
  contents.metadata["qkv.crc32"] = "{}";
  CHECK_THROWS_WITH_AS(write_safetensors((folder / "w.safetensors").string(), contents),
                       doctest::Contains("is reserved"), std::invalid_argument);
  CHECK(std::filesystem::is_empty(folder));
}

// Hostile headers (issue #12): each was a crash, a silent acceptance or an unbounded
// message before the loader rules.
TEST_CASE("safetensors: a deeply nested header is refused without deep recursion") {
  const std::string two_floats = raw(std::vector<float>{1.0f, 2.0f});
  SUBCASE("100k levels, about 200 KB: was a stack overflow quoting the value") {
    const std::size_t levels = 100000;
    std::string header = R"({"a":)" + std::string(levels, '[') + std::string(levels, ']') + "}";
    check_decode_error(make_file(header, two_floats),
                       "header has containers nested 17 deep (the limit is 16)");
  }
  SUBCASE("deep inside a metadata value's place") {
    std::string header = R"({"__metadata__":)";
    for (int i = 0; i < 20; ++i) header += R"({"k":)";
    header += "1" + std::string(21, '}');
    check_decode_error(make_file(header, ""), "has containers nested 17 deep (the limit is 16)");
  }
  SUBCASE("a shallow container where a tensor belongs is described, not dumped") {
    check_decode_error(make_file(R"({"a":[[[[[1]]]]]})", ""),
                       "tensor 'a' must be an object, found an array");
  }
}

TEST_CASE("safetensors: a key given twice is refused (JSON parsers keep only one)") {
  const std::string two_floats = raw(std::vector<float>{1.0f, 2.0f});
  SUBCASE("a tensor name") {
    check_decode_error(make_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                                 R"("a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                                 two_floats),
                       "header has the key 'a' twice");
  }
  SUBCASE("a field of a tensor") {
    check_decode_error(
        make_file(R"({"a":{"dtype":"F32","shape":[1],"shape":[2],"data_offsets":[0,8]}})",
                  two_floats),
        "header has the key 'shape' twice (inside 'a')");
  }
  SUBCASE("a metadata key") {
    check_decode_error(make_file(R"({"__metadata__":{"step":"1","step":"2"}})", ""),
                       "header has the key 'step' twice (inside '__metadata__')");
  }
}

TEST_CASE("safetensors: offsets and sizes are checked without overflow") {
  const std::string two_floats = raw(std::vector<float>{1.0f, 2.0f});
  SUBCASE("the first tensor does not start at 0") {
    check_decode_error(
        make_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", two_floats),
        "data bytes [0, 4] belong to no tensor");
  }
  SUBCASE("a gap between tensors") {
    check_decode_error(make_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                                 R"("b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})",
                                 two_floats + two_floats),
                       "data bytes [4, 8] belong to no tensor");
  }
  SUBCASE("trailing bytes after the last tensor") {
    check_decode_error(
        make_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", two_floats + "xyz"),
        "data bytes [8, 11] belong to no tensor");
  }
  SUBCASE("an offset of 2^64 - 1") {
    check_decode_error(
        make_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,18446744073709551615]}})",
                  two_floats),
        "data_offsets [0, 18446744073709551615] go past the end of the data (8 bytes)");
  }
  SUBCASE("a number too large for a double") {
    check_decode_error(
        make_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,1e999]}})", two_floats),
        "header is not valid JSON");
  }
  SUBCASE("a shape whose product overflows 64 bits") {
    check_decode_error(make_file(R"({"a":{"dtype":"F32","shape":[4294967296,4294967296,16],)"
                                 R"("data_offsets":[0,8]}})",
                                 two_floats),
                       "tensor 'a' shape [4294967296, 4294967296, 16] of F32 is too large: its "
                       "size in bytes does not fit 64 bits");
  }
  SUBCASE("a shape of more dimensions than any array library makes") {
    std::string shape = "1";
    for (int i = 1; i < 65; ++i) shape += ",1";
    check_decode_error(
        make_file(R"({"a":{"dtype":"F32","shape":[)" + shape + R"(],"data_offsets":[0,4]}})",
                  two_floats.substr(0, 4)),
        "tensor 'a' shape has 65 dimensions (at most 64)");
  }
}

TEST_CASE("safetensors: the header's size and start follow the reference reader") {
  SUBCASE("a header length over 100 MB is refused before anything is allocated") {
    std::string file = make_file("{}", "");
    const std::uint64_t length = 200'000'000;
    std::memcpy(&file[0], &length, 8);
    check_decode_error(file, "header length 200000000 is over the limit of 100000000 bytes");
  }
  SUBCASE("a header that does not start with '{'") {
    check_decode_error(make_file(R"(  {})", ""), "header does not start with '{'");
  }
}

TEST_CASE("safetensors: bad values are quoted short and printable") {
  SUBCASE("a megabyte-long dtype") {
    const std::string dtype(1 << 20, 'x');
    std::string file =
        make_file(R"({"a":{"dtype":")" + dtype + R"(","shape":[0],"data_offsets":[0,0]}})", "");
    try {
      decode_safetensors(file, "bad.safetensors");
      FAIL("a megabyte-long dtype was accepted");
    } catch (const std::runtime_error& error) {
      const std::string message = error.what();
      CHECK(message.find("unsupported dtype 'xxxx") != std::string::npos);
      CHECK(message.find("(1048576 bytes)") != std::string::npos);
      CHECK(message.size() < 400);
    }
  }
  SUBCASE("a name holding a terminal escape sequence") {
    check_decode_error(
        make_file(R"({"a\u001b[2J":{"dtype":"F16","shape":[0],"data_offsets":[0,0]}})", ""),
        "tensor 'a\\x1b[2J' has unsupported dtype 'F16'");
  }
}

namespace {

// A file's header as JSON and its data bytes, to rewrite a header the way another tool
// (or damage) would.
struct Parts {
  nlohmann::json header;
  std::string data;
};

Parts split(const std::string& file) {
  std::uint64_t length = 0;
  std::memcpy(&length, file.data(), 8);
  return {nlohmann::json::parse(file.substr(8, length)), file.substr(8 + length)};
}

std::string join(const Parts& parts) { return make_file(parts.header.dump(), parts.data); }

Safetensors two_tensors() {
  Safetensors contents;
  contents.tensors["a"] = Tensor::from_vector(std::vector<float>{1, 2, 3, 4, 5, 6}, {2, 3});
  contents.tensors["b"] = Tensor::from_vector(std::vector<double>{0.5}, {1});
  contents.metadata["step"] = "12";
  return contents;
}

}  // namespace

TEST_CASE("safetensors: qkv's checksums are written, verified and kept out of the metadata") {
  const std::string file = encode_safetensors(two_tensors());
  Parts parts = split(file);
  REQUIRE(parts.header["__metadata__"].contains("qkv.crc32"));
  Safetensors back = decode_safetensors(file, "good.safetensors");
  CHECK(back.verified);
  CHECK(back.metadata == two_tensors().metadata);

  SUBCASE("a changed data byte names its tensor") {
    std::string damaged = file;
    damaged[damaged.size() - 1] ^= 0x01;  // the last byte belongs to "b"
    check_decode_error(damaged, "tensor 'b' does not match its checksum");
  }
  SUBCASE("a changed metadata value") {
    nlohmann::json& metadata = parts.header["__metadata__"];
    metadata["step"] = "13";
    check_decode_error(join(parts), "the metadata do not match their checksum");
  }
  SUBCASE("a shape changed to one of the same size") {
    parts.header["a"]["shape"] = {3, 2};
    check_decode_error(join(parts), "tensor 'a' does not match its checksum");
  }
  SUBCASE("a tensor without a checksum") {
    nlohmann::json sums =
        nlohmann::json::parse(parts.header["__metadata__"]["qkv.crc32"].get<std::string>());
    sums.erase("a");
    parts.header["__metadata__"]["qkv.crc32"] = sums.dump();
    check_decode_error(join(parts), "metadata 'qkv.crc32' has no checksum for 'a'");
  }
  SUBCASE("a checksum for a tensor the file does not have") {
    nlohmann::json sums =
        nlohmann::json::parse(parts.header["__metadata__"]["qkv.crc32"].get<std::string>());
    sums["c"] = "00000000";
    parts.header["__metadata__"]["qkv.crc32"] = sums.dump();
    check_decode_error(join(parts), "has a checksum for 'c', which is no tensor of this file");
  }
  SUBCASE("a checksum that is not 8 lowercase hex digits") {
    nlohmann::json sums =
        nlohmann::json::parse(parts.header["__metadata__"]["qkv.crc32"].get<std::string>());
    sums["a"] = "0000000G";
    parts.header["__metadata__"]["qkv.crc32"] = sums.dump();
    check_decode_error(join(parts),
                       "metadata 'qkv.crc32' entry 'a' must be 8 lowercase hex digits, found "
                       "\"0000000G\"");
  }
  SUBCASE("checksums that are not an object") {
    parts.header["__metadata__"]["qkv.crc32"] = "[1]";
    check_decode_error(join(parts),
                       "metadata 'qkv.crc32' must be an object of checksums, found an array");
  }
  SUBCASE("without the checksum entry the file still decodes, unverified") {
    parts.header["__metadata__"].erase("qkv.crc32");
    Safetensors old = decode_safetensors(join(parts), "old.safetensors");
    CHECK_FALSE(old.verified);
    CHECK(old.tensors.at("a").to_vector() == std::vector<double>{1, 2, 3, 4, 5, 6});
  }
}

TEST_CASE("safetensors: what cannot be written is refused before writing") {
  Safetensors contents = two_tensors();
  SUBCASE("the reserved metadata key") {
    contents.metadata["qkv.crc32"] = "{}";
    CHECK_THROWS_WITH_AS(encode_safetensors(contents), doctest::Contains("'qkv.crc32' is reserved"),
                         std::invalid_argument);
  }
  SUBCASE("a metadata value that is not UTF-8, named by its key") {
    contents.metadata["name"] = "caf\xe9";
    CHECK_THROWS_WITH_AS(encode_safetensors(contents),
                         doctest::Contains("metadata 'name' is not valid UTF-8"),
                         std::invalid_argument);
  }
  SUBCASE("a tensor name that is not UTF-8") {
    contents.tensors["\xff"] = Tensor::zeros({1});
    CHECK_THROWS_WITH_AS(encode_safetensors(contents),
                         doctest::Contains("the tensor name is not valid UTF-8"),
                         std::invalid_argument);
  }
}
