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
// qkv adds one metadata entry, "qkv.crc32": a JSON object of CRC-32s (zlib's, as 8
// lowercase hex digits), one per tensor over "<dtype> <shape>" (e.g. "F32 [2, 3]")
// followed by its bytes, and one under "__metadata__" over the other metadata entries as
// compact JSON. Other readers see an ordinary metadata string.
//
//   Safetensors file;
//   file.tensors["embed.weight"] = weight;
//   file.metadata["step"] = "100";
//   write_safetensors("run/last.safetensors", file);   // atomic: old or new, never partial
//   Safetensors back = read_safetensors("run/last.safetensors");
//   if (!back.verified) ...  // no qkv checksums: written by another tool or an older qkv
//
// Reading follows the reference reader's rules and throws std::runtime_error naming the
// file and the problem: a header of at most 100 MB that starts with '{' and is valid
// JSON, no key given twice, nesting at most 16 levels deep, known dtypes, shapes of at
// most 64 dimensions whose sizes fit 64 bits, and offsets that tile the data exactly:
// from 0, without gaps or overlaps, to the end of the file. When the file has qkv's
// checksums, every tensor and the metadata must match theirs.
#pragma once

#include <map>
#include <string>

#include "core/tensor.hpp"

namespace qkv::io {

struct Safetensors {
  std::map<std::string, core::Tensor> tensors;  // by name; written in name order
  std::map<std::string, std::string> metadata;  // without "qkv.crc32", which is reserved
  // Set by decoding: the file carried qkv's checksums and every one matched. Ignored by
  // encoding, which always writes them.
  bool verified = false;
};

// The file's bytes, and back. `source` names the bytes' origin in error messages.
// Encoding throws std::invalid_argument for a tensor named "__metadata__", an undefined
// tensor, metadata under the reserved key, or a name or value that is not valid UTF-8.
std::string encode_safetensors(const Safetensors& contents);
Safetensors decode_safetensors(const std::string& bytes, const std::string& source);

Safetensors read_safetensors(const std::string& path);
// Written atomically (see atomic_file.hpp) and streamed: the header, then each tensor's
// values from the tensor itself, so the file is never a second copy in memory. Its bytes
// are encode_safetensors(contents)'s, and what encoding refuses is refused before the
// file is created.
void write_safetensors(const std::string& path, const Safetensors& contents);

}  // namespace qkv::io
