// safetensors: round trips, the Python library's layout, and every corrupt-file error.
#include <doctest/doctest.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

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
  SUBCASE("header not an object") { check_decode_error(make_file("[1, 2]", ""), "not a JSON object"); }
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
