// safetensors encoding and strict decoding (see safetensors.hpp for the layout).
#include "io/safetensors.hpp"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <vector>

#include <nlohmann/json.hpp>

#include "io/atomic_file.hpp"

namespace qkv::io {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "safetensors data is little-endian; qkv copies it as raw host memory");

namespace {

using core::DType;
using core::Tensor;
using json = nlohmann::json;

constexpr const char* kMetadataKey = "__metadata__";
constexpr std::size_t kLengthBytes = 8;

const char* dtype_tag(DType dtype) { return dtype == DType::f32 ? "F32" : "F64"; }
std::size_t dtype_bytes(DType dtype) { return dtype == DType::f32 ? 4 : 8; }

const void* raw_data(const Tensor& tensor) {
  return tensor.dtype() == DType::f32 ? static_cast<const void*>(tensor.data<float>())
                                      : static_cast<const void*>(tensor.data<double>());
}
void* raw_data(Tensor& tensor) {
  return tensor.dtype() == DType::f32 ? static_cast<void*>(tensor.data<float>())
                                      : static_cast<void*>(tensor.data<double>());
}

// Where one tensor's bytes lie, for the overlap and coverage checks.
struct Span {
  std::uint64_t begin;
  std::uint64_t end;
  std::string name;
};

std::string span_str(std::uint64_t begin, std::uint64_t end) {
  return "[" + std::to_string(begin) + ", " + std::to_string(end) + "]";
}

class Decoder {
 public:
  Decoder(const std::string& bytes, const std::string& source) : bytes_(bytes), source_(source) {}

  Safetensors decode() {
    if (bytes_.size() < kLengthBytes)
      fail("file too short (" + std::to_string(bytes_.size()) +
           " bytes): a safetensors file starts with an 8-byte header length");
    std::uint64_t header_length = 0;
    std::memcpy(&header_length, bytes_.data(), kLengthBytes);
    const std::uint64_t available = bytes_.size() - kLengthBytes;
    if (header_length > available)
      fail("header length " + std::to_string(header_length) + " goes past the end of the file (" +
           std::to_string(bytes_.size()) + " bytes)");
    data_begin_ = kLengthBytes + header_length;
    data_size_ = available - header_length;

    json header;
    try {
      header = json::parse(bytes_.begin() + kLengthBytes, bytes_.begin() + data_begin_);
    } catch (const json::parse_error& error) {
      fail(std::string("header is not valid JSON: ") + error.what());
    }
    if (!header.is_object()) fail("header is not a JSON object");

    Safetensors contents;
    std::vector<Span> spans;
    for (const auto& [name, entry] : header.items()) {
      if (name == kMetadataKey) {
        read_metadata(entry, contents.metadata);
        continue;
      }
      spans.push_back(read_tensor(name, entry, contents.tensors));
    }
    check_coverage(spans);
    return contents;
  }

 private:
  [[noreturn]] void fail(const std::string& problem) const {
    throw std::runtime_error("safetensors file '" + source_ + "': " + problem);
  }

  void read_metadata(const json& entry, std::map<std::string, std::string>& metadata) const {
    if (!entry.is_object()) fail("__metadata__ must be an object of strings");
    for (const auto& [key, value] : entry.items()) {
      if (!value.is_string())
        fail("__metadata__ entry '" + key + "' must be a string, found " + value.dump());
      metadata[key] = value.get<std::string>();
    }
  }

  std::uint64_t unsigned_value(const json& value, const std::string& what) const {
    if (!value.is_number_integer() || value.get<std::int64_t>() < 0)
      fail(what + " must be a non-negative integer, found " + value.dump());
    return value.get<std::uint64_t>();
  }

  Span read_tensor(const std::string& name, const json& entry,
                   std::map<std::string, Tensor>& tensors) const {
    const std::string where = "tensor '" + name + "'";
    if (!entry.is_object()) fail(where + " must be an object, found " + entry.dump());
    for (const char* field : {"dtype", "shape", "data_offsets"})
      if (!entry.contains(field)) fail(where + " has no \"" + field + "\"");

    const json& dtype_json = entry["dtype"];
    if (!dtype_json.is_string()) fail(where + " dtype must be a string");
    const std::string tag = dtype_json.get<std::string>();
    DType dtype;
    if (tag == "F32") {
      dtype = DType::f32;
    } else if (tag == "F64") {
      dtype = DType::f64;
    } else {
      fail(where + " has unsupported dtype '" + tag + "' (qkv reads F32 and F64)");
    }

    const json& shape_json = entry["shape"];
    if (!shape_json.is_array()) fail(where + " shape must be an array");
    core::Shape shape;
    std::uint64_t numel = 1;
    for (const json& extent : shape_json) {
      std::uint64_t n = unsigned_value(extent, where + " shape entry");
      if (n != 0 && numel > std::numeric_limits<std::uint64_t>::max() / 16 / n)
        fail(where + " shape " + shape_json.dump() + " is too large");
      numel *= n;
      shape.push_back(static_cast<std::size_t>(n));
    }

    const json& offsets = entry["data_offsets"];
    if (!offsets.is_array() || offsets.size() != 2)
      fail(where + " data_offsets must be [begin, end], found " + offsets.dump());
    const std::uint64_t begin = unsigned_value(offsets[0], where + " data_offsets begin");
    const std::uint64_t end = unsigned_value(offsets[1], where + " data_offsets end");
    if (end < begin) fail(where + " data_offsets " + span_str(begin, end) + " end before they begin");
    if (end > data_size_)
      fail(where + " data_offsets " + span_str(begin, end) + " go past the end of the data (" +
           std::to_string(data_size_) + " bytes)");
    const std::uint64_t expected = numel * dtype_bytes(dtype);
    if (end - begin != expected)
      fail(where + " has shape " + core::shape_str(shape) + " of " + tag + " (" +
           std::to_string(expected) + " bytes) but data_offsets " + span_str(begin, end) +
           " span " + std::to_string(end - begin) + " bytes");

    Tensor tensor = Tensor::empty(shape, dtype);
    if (expected > 0) std::memcpy(raw_data(tensor), bytes_.data() + data_begin_ + begin, expected);
    tensors[name] = tensor;
    return Span{begin, end, name};
  }

  // Like the Python library: tensors may not overlap, and every data byte belongs to one.
  void check_coverage(std::vector<Span>& spans) const {
    std::sort(spans.begin(), spans.end(), [](const Span& a, const Span& b) {
      return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
    });
    std::uint64_t covered = 0;
    const Span* previous = nullptr;
    for (const Span& span : spans) {
      if (span.begin < covered)
        fail("tensors '" + previous->name + "' " + span_str(previous->begin, previous->end) +
             " and '" + span.name + "' " + span_str(span.begin, span.end) + " overlap");
      if (span.begin > covered)
        fail("data bytes " + span_str(covered, span.begin) + " belong to no tensor");
      covered = span.end;
      previous = &span;
    }
    if (covered != data_size_)
      fail("data bytes " + span_str(covered, data_size_) + " belong to no tensor");
  }

  const std::string& bytes_;
  const std::string& source_;
  std::uint64_t data_begin_ = 0;
  std::uint64_t data_size_ = 0;
};

}  // namespace

std::string encode_safetensors(const Safetensors& contents) {
  json header = json::object();
  if (!contents.metadata.empty()) header[kMetadataKey] = contents.metadata;
  std::uint64_t offset = 0;
  for (const auto& [name, tensor] : contents.tensors) {
    if (name == kMetadataKey) throw std::invalid_argument("a tensor may not be named __metadata__");
    if (!tensor.defined()) throw std::invalid_argument("tensor '" + name + "' is undefined");
    const std::uint64_t size = tensor.numel() * dtype_bytes(tensor.dtype());
    header[name] = {{"dtype", dtype_tag(tensor.dtype())},
                    {"shape", tensor.shape()},
                    {"data_offsets", {offset, offset + size}}};
    offset += size;
  }
  std::string header_text = header.dump();
  // Pad so the data starts 8-byte aligned, as the Python library does.
  header_text.append((kLengthBytes - header_text.size() % kLengthBytes) % kLengthBytes, ' ');

  std::string bytes;
  bytes.reserve(kLengthBytes + header_text.size() + offset);
  const std::uint64_t header_length = header_text.size();
  bytes.append(reinterpret_cast<const char*>(&header_length), kLengthBytes);
  bytes += header_text;
  for (const auto& [name, tensor] : contents.tensors)
    if (tensor.numel() > 0)
      bytes.append(static_cast<const char*>(raw_data(tensor)),
                   tensor.numel() * dtype_bytes(tensor.dtype()));
  return bytes;
}

Safetensors decode_safetensors(const std::string& bytes, const std::string& source) {
  return Decoder(bytes, source).decode();
}

Safetensors read_safetensors(const std::string& path) {
  return decode_safetensors(read_file(path), path);
}

void write_safetensors(const std::string& path, const Safetensors& contents) {
  write_file_atomically(path, encode_safetensors(contents));
}

}  // namespace qkv::io
