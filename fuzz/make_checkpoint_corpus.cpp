// Writes the seed corpus of the checkpoint fuzzer (fuzz/corpus/checkpoint/): a few valid
// tiny checkpoints, and the hostile vectors of issue #12, each a file named for what it
// is. Run once, and again when the checkpoint format changes:
//
//   cmake --build build --target qkv_make_checkpoint_corpus
//   build/fuzz/qkv_make_checkpoint_corpus fuzz/corpus/checkpoint
//
// Inputs the fuzzer found (crash-* once fixed, found-* that reach code the seeds do not)
// and seeds of older format versions (valid_v1_*, written by an older version of this
// program) live beside these.
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/tensor.hpp"
#include "io/checkpoint.hpp"
#include "io/safetensors.hpp"

using nlohmann::json;
using qkv::core::Tensor;
using qkv::io::Checkpoint;

namespace {

Checkpoint small_checkpoint() {
  Checkpoint checkpoint;
  checkpoint.weights["embed.weight"] =
      Tensor::from_vector(std::vector<float>{0.5f, -1.25f, 2.0f, 0.125f}, {2, 2});
  checkpoint.weights["head.bias"] = Tensor::from_vector(std::vector<float>{0.25f, -0.5f}, {2});
  checkpoint.optimizer_name = "adam";
  checkpoint.optimizer.tensors["head.bias.exp_avg"] =
      Tensor::from_vector(std::vector<float>{0.01f, -0.02f}, {2});
  checkpoint.optimizer.scalars["step"] = 3;
  checkpoint.step = 3;
  checkpoint.rng_states["data"] = "1 2 3 4";
  checkpoint.rng_states["dropout"] = "5 6 7 8";
  checkpoint.config_yaml = "name: tiny\nseed: 1\n";
  checkpoint.vocabulary = {"PAD", "SEP", "EOS", "a", "b"};
  checkpoint.best_seq_acc = 0.5;
  checkpoint.elapsed_s = 1.5;
  return checkpoint;
}

Checkpoint f64_checkpoint() {
  Checkpoint checkpoint;
  checkpoint.weights["w"] = Tensor::from_vector(std::vector<double>{0.1, -1e300}, {2});
  checkpoint.weights["scalar"] = Tensor::scalar(42.0, qkv::core::DType::f64);
  checkpoint.weights["empty"] = Tensor::zeros({0, 4});
  checkpoint.optimizer_name = "sgd";
  checkpoint.task_state = R"({"vocabulary": ["a", "\u00e9"]})";
  return checkpoint;
}

// A file from a header's text and data bytes, padded as the Python library pads it.
std::string file_of(std::string header, const std::string& data) {
  header.append((8 - header.size() % 8) % 8, ' ');
  const std::uint64_t length = header.size();
  return std::string(reinterpret_cast<const char*>(&length), 8) + header + data;
}

struct Parts {
  json header;
  std::string data;
};

Parts split(const std::string& file) {
  std::uint64_t length = 0;
  std::memcpy(&length, file.data(), 8);
  return {json::parse(file.substr(8, length)), file.substr(8 + length)};
}

std::string join(const Parts& parts) { return file_of(parts.header.dump(), parts.data); }

std::string raw_floats(const std::vector<float>& values) {
  return std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(float));
}

// A header whose tensor entries are `entries` (raw JSON text) over `data`, with the
// small checkpoint's metadata (no checksums: the damage should reach the structure rules).
std::string with_entries(const std::string& entries, const std::string& data) {
  Parts parts = split(qkv::io::encode_checkpoint(Checkpoint{}));
  parts.header["__metadata__"].erase("qkv.crc32");
  std::string header = parts.header.dump();
  header.insert(1, entries + ",");
  return file_of(header, data);
}

// The small checkpoint with one metadata value replaced, checksums recomputed.
std::string with_metadata(const std::string& key, const std::string& value) {
  qkv::io::Safetensors file =
      qkv::io::decode_safetensors(qkv::io::encode_checkpoint(small_checkpoint()), "memory");
  file.metadata[key] = value;
  return qkv::io::encode_safetensors(file);
}

std::string without_checksums(const std::string& file) {
  Parts parts = split(file);
  parts.header["__metadata__"].erase("qkv.crc32");
  return join(parts);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <corpus folder>\n", argv[0]);
    return 2;
  }
  const std::string small = qkv::io::encode_checkpoint(small_checkpoint());
  const std::string two_floats = raw_floats({1.0f, 2.0f});
  const std::uint64_t small_header = split(small).header.dump().size();

  Checkpoint nan = small_checkpoint();
  nan.weights["head.bias"].data<float>()[1] = std::numeric_limits<float>::quiet_NaN();
  Checkpoint inf_state = small_checkpoint();
  inf_state.optimizer.tensors["head.bias.exp_avg"].data<float>()[0] =
      std::numeric_limits<float>::infinity();
  std::string flipped_data = small;
  flipped_data[flipped_data.size() - 1] ^= 0x10;
  std::string huge_length = small;
  const std::uint64_t length = std::uint64_t{1} << 63;
  std::memcpy(&huge_length[0], &length, 8);

  const std::vector<std::pair<std::string, std::string>> seeds = {
      {"valid_small", small},
      {"valid_empty", qkv::io::encode_checkpoint(Checkpoint{})},
      {"valid_f64_scalar_and_empty", qkv::io::encode_checkpoint(f64_checkpoint())},
      {"valid_without_checksums", without_checksums(small)},
      {"deep_header_100k",
       file_of(R"({"a":)" + std::string(100000, '[') + std::string(100000, ']') + "}", "")},
      {"deep_metadata_value",
       with_metadata("rng_states", std::string(5000, '[') + std::string(5000, ']'))},
      {"truncated_in_header", small.substr(0, 8 + small_header / 2)},
      {"truncated_in_data", small.substr(0, small.size() - 3)},
      {"truncated_length", small.substr(0, 5)},
      {"duplicate_tensor", with_entries(R"("a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                                        R"("a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]})",
                                        two_floats)},
      {"duplicate_metadata_key", with_metadata("optimizer_scalars", R"({"step":3,"step":4})")},
      {"offsets_gap",
       with_entries(R"("a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]})", two_floats)},
      {"offsets_overlap", with_entries(R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                                       R"("b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]})",
                                       two_floats)},
      {"offsets_past_end",
       with_entries(R"("a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]})", two_floats)},
      {"offsets_2_64_minus_1",
       with_entries(R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,18446744073709551615]})",
                    two_floats)},
      {"offsets_1e999",
       with_entries(R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,1e999]})", two_floats)},
      {"trailing_bytes",
       with_entries(R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})", two_floats + "xyz")},
      {"shape_overflow",
       with_entries(
           R"("a":{"dtype":"F32","shape":[4294967296,4294967296,16],"data_offsets":[0,8]})",
           two_floats)},
      {"header_length_2_63", huge_length},
      {"nan_weight", qkv::io::encode_checkpoint(nan)},
      {"inf_optimizer_state", qkv::io::encode_checkpoint(inf_state)},
      {"checksum_mismatch", flipped_data},
      {"name_with_escape_sequence",
       with_entries(R"("a\u001b[2J":{"dtype":"F16","shape":[0],"data_offsets":[0,0]})", "")},
  };
  for (const auto& [name, bytes] : seeds) {
    const std::string path = std::string(argv[1]) + "/" + name + ".safetensors";
    std::ofstream out(path, std::ios::binary);
    out << bytes;
    if (!out) {
      std::fprintf(stderr, "cannot write '%s'\n", path.c_str());
      return 1;
    }
  }
  std::printf("wrote %zu seeds to '%s'\n", seeds.size(), argv[1]);
  return 0;
}
