// Reading and writing .safetensors files: qkv's checkpoint format.
//
// Layout (the format of the `safetensors` Python library, so files move both ways):
//   8 bytes   little-endian u64 N, the header length
//   N bytes   JSON: {"name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [b, e]},
//                    ..., "__metadata__": {"key": "value", ...}}, padded with spaces to a
//                    multiple of 8 bytes
//   the rest  raw little-endian tensor data; offsets are relative to its start
// qkv reads and writes F32 and F64 tensors; metadata values are strings.
//
//   Safetensors file;
//   file.tensors["embed.weight"] = weight;
//   file.metadata["step"] = "100";
//   write_safetensors("run/last.safetensors", file);   // atomic: old or new, never partial
//   Safetensors back = read_safetensors("run/last.safetensors");
//
// Reading validates everything and throws std::runtime_error naming the file and the
// problem (short file, header length past the end, bad JSON, unknown dtype, offsets out
// of range, overlapping or not matching shape × dtype size).
#pragma once

#include <map>
#include <string>

#include "core/tensor.hpp"

namespace qkv::io {

struct Safetensors {
  std::map<std::string, core::Tensor> tensors;  // by name; written in name order
  std::map<std::string, std::string> metadata;
};

// The file's bytes, and back. `source` names the bytes' origin in error messages.
std::string encode_safetensors(const Safetensors& contents);
Safetensors decode_safetensors(const std::string& bytes, const std::string& source);

Safetensors read_safetensors(const std::string& path);
// Written atomically (see atomic_file.hpp).
void write_safetensors(const std::string& path, const Safetensors& contents);

}  // namespace qkv::io
