// safetensors encoding and strict decoding, with qkv's checksums (see safetensors.hpp for
// the layout and the rules).
#include "io/safetensors.hpp"

#include <zlib.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <set>
#include <stdexcept>
#include <vector>

#include <nlohmann/json.hpp>

#include "io/atomic_file.hpp"
#include "io/untrusted_json.hpp"

namespace qkv::io {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "safetensors data is little-endian; qkv copies it as raw host memory");

namespace {

using core::DType;
using core::Tensor;
using detail::describe;
using detail::printable;
using json = nlohmann::json;

constexpr const char* kMetadataKey = "__metadata__";
constexpr const char* kChecksumKey = "qkv.crc32";
constexpr std::size_t kLengthBytes = 8;
constexpr std::uint64_t kMaxHeaderBytes = 100'000'000;  // the reference reader's limit
// A valid header is 3 levels deep (the header, a tensor's entry, its shape), so this
// refuses no valid file; it stops a hostile one before its value is built.
constexpr std::size_t kMaxHeaderDepth = 16;
constexpr std::size_t kMaxRank = 64;  // numpy's NPY_MAXDIMS: no array library makes more

const char* dtype_tag(DType dtype) { return dtype == DType::f32 ? "F32" : "F64"; }
std::size_t dtype_bytes(DType dtype) { return dtype == DType::f32 ? 4 : 8; }

const char* raw_data(const Tensor& tensor) {
  return tensor.dtype() == DType::f32 ? reinterpret_cast<const char*>(tensor.data<float>())
                                      : reinterpret_cast<const char*>(tensor.data<double>());
}
void* raw_data(Tensor& tensor) {
  return tensor.dtype() == DType::f32 ? static_cast<void*>(tensor.data<float>())
                                      : static_cast<void*>(tensor.data<double>());
}

std::string hex32(std::uint32_t value) {
  char text[9];
  std::snprintf(text, sizeof text, "%08x", value);
  return text;
}

std::uint32_t crc32_update(std::uint32_t crc, const char* data, std::size_t size) {
  // zlib treats a null buffer as "start over", so an empty tensor must not pass one.
  if (size == 0) return crc;
  return static_cast<std::uint32_t>(crc32_z(crc, reinterpret_cast<const Bytef*>(data), size));
}

// Covers the dtype and shape too, so a header flip that keeps the byte count is caught.
std::string tensor_checksum(DType dtype, const core::Shape& shape, const char* data,
                            std::size_t size) {
  const std::string descriptor = std::string(dtype_tag(dtype)) + " " + core::shape_str(shape);
  std::uint32_t crc = crc32_update(0, descriptor.data(), descriptor.size());
  return hex32(crc32_update(crc, data, size));
}

// Over the metadata without the checksum entry, as compact JSON: nlohmann writes a
// std::map's keys in order and escapes one way, so writer and reader get the same bytes.
std::string metadata_checksum(const std::map<std::string, std::string>& metadata) {
  const std::string text = json(metadata).dump();
  return hex32(crc32_update(0, text.data(), text.size()));
}

// As hex32() writes them.
bool is_checksum(const json& value) {
  if (!value.is_string()) return false;
  const std::string& text = value.get_ref<const std::string&>();
  return text.size() == 8 && text.find_first_not_of("0123456789abcdef") == std::string::npos;
}

// One tensor's entry in the header, checked but not yet copied out of the file.
struct Entry {
  std::string name;
  DType dtype;
  core::Shape shape;
  std::uint64_t begin;
  std::uint64_t end;
};

std::string span_str(std::uint64_t begin, std::uint64_t end) {
  return "[" + std::to_string(begin) + ", " + std::to_string(end) + "]";
}

class Decoder {
 public:
  Decoder(const std::string& bytes, const std::string& source)
      : bytes_(bytes), prefix_("safetensors file '" + source + "': ") {}

  Safetensors decode() {
    const json header = parse_header();
    Safetensors contents;
    std::vector<Entry> entries;
    for (const auto& [name, value] : header.items()) {
      if (name == kMetadataKey)
        read_metadata(value, contents.metadata);
      else
        entries.push_back(read_entry(name, value));
    }
    check_tiling(entries);
    contents.verified = verify_checksums(entries, contents.metadata);
    for (const Entry& entry : entries) contents.tensors[entry.name] = copy_out(entry);
    return contents;
  }

 private:
  [[noreturn]] void fail(const std::string& problem) const {
    throw std::runtime_error(prefix_ + problem);
  }

  json parse_header() {
    if (bytes_.size() < kLengthBytes)
      fail("file too short (" + std::to_string(bytes_.size()) +
           " bytes): a safetensors file starts with an 8-byte header length");
    std::uint64_t header_length = 0;
    std::memcpy(&header_length, bytes_.data(), kLengthBytes);
    if (header_length > kMaxHeaderBytes)
      fail("header length " + std::to_string(header_length) + " is over the limit of " +
           std::to_string(kMaxHeaderBytes) + " bytes");
    const std::uint64_t available = bytes_.size() - kLengthBytes;
    if (header_length > available)
      fail("header length " + std::to_string(header_length) + " goes past the end of the file (" +
           std::to_string(bytes_.size()) + " bytes)");
    data_begin_ = kLengthBytes + header_length;
    data_size_ = available - header_length;

    const std::string text = bytes_.substr(kLengthBytes, header_length);
    if (text.empty() || text[0] != '{') fail("header does not start with '{'");
    // Valid JSON that starts with '{' is an object.
    return detail::parse_untrusted_json(text, kMaxHeaderDepth, prefix_ + "header");
  }

  void read_metadata(const json& entry, std::map<std::string, std::string>& metadata) const {
    if (!entry.is_object())
      fail("__metadata__ must be an object of strings, found " + describe(entry));
    for (const auto& [key, value] : entry.items()) {
      if (!value.is_string())
        fail("__metadata__ entry '" + printable(key) + "' must be a string, found " +
             describe(value));
      metadata[key] = value.get<std::string>();
    }
  }

  std::uint64_t unsigned_value(const json& value, const std::string& what) const {
    if (!value.is_number_unsigned())
      fail(what + " must be a non-negative integer, found " + describe(value));
    return value.get<std::uint64_t>();
  }

  DType read_dtype(const json& entry, const std::string& where) const {
    const json& value = entry["dtype"];
    if (!value.is_string()) fail(where + " dtype must be a string, found " + describe(value));
    const std::string& tag = value.get_ref<const std::string&>();
    if (tag == "F32") return DType::f32;
    if (tag == "F64") return DType::f64;
    fail(where + " has unsupported dtype '" + printable(tag) + "' (qkv reads F32 and F64)");
  }

  core::Shape read_shape(const json& entry, const std::string& where) const {
    const json& value = entry["shape"];
    if (!value.is_array()) fail(where + " shape must be an array, found " + describe(value));
    if (value.size() > kMaxRank)
      fail(where + " shape has " + std::to_string(value.size()) + " dimensions (at most " +
           std::to_string(kMaxRank) + ")");
    core::Shape shape;
    for (const json& extent : value)
      shape.push_back(static_cast<std::size_t>(unsigned_value(extent, where + " shape entry")));
    return shape;
  }

  // The tensor's size in bytes, overflow-checked as the reference reader checks it: the
  // product of the dimensions in their order, then times the element size.
  std::uint64_t byte_size(const core::Shape& shape, DType dtype, const std::string& where) const {
    std::uint64_t numel = 1;
    bool overflow = false;
    for (std::size_t extent : shape)
      overflow = overflow || __builtin_mul_overflow(numel, std::uint64_t{extent}, &numel);
    std::uint64_t size = 0;
    overflow = overflow || __builtin_mul_overflow(numel, std::uint64_t{dtype_bytes(dtype)}, &size);
    if (overflow)
      fail(where + " shape " + core::shape_str(shape) + " of " + dtype_tag(dtype) +
           " is too large: its size in bytes does not fit 64 bits");
    return size;
  }

  Entry read_entry(const std::string& name, const json& value) const {
    const std::string where = "tensor '" + printable(name) + "'";
    if (!value.is_object()) fail(where + " must be an object, found " + describe(value));
    for (const char* field : {"dtype", "shape", "data_offsets"})
      if (!value.contains(field)) fail(where + " has no \"" + field + "\"");
    Entry entry{name, read_dtype(value, where), read_shape(value, where), 0, 0};
    const std::uint64_t size = byte_size(entry.shape, entry.dtype, where);

    const json& offsets = value["data_offsets"];
    if (!offsets.is_array() || offsets.size() != 2)
      fail(where + " data_offsets must be [begin, end], found " + describe(offsets));
    entry.begin = unsigned_value(offsets[0], where + " data_offsets begin");
    entry.end = unsigned_value(offsets[1], where + " data_offsets end");
    const std::string span = span_str(entry.begin, entry.end);
    if (entry.end < entry.begin) fail(where + " data_offsets " + span + " end before they begin");
    if (entry.end > data_size_)
      fail(where + " data_offsets " + span + " go past the end of the data (" +
           std::to_string(data_size_) + " bytes)");
    if (entry.end - entry.begin != size)
      fail(where + " has shape " + core::shape_str(entry.shape) + " of " + dtype_tag(entry.dtype) +
           " (" + std::to_string(size) + " bytes) but data_offsets " + span + " span " +
           std::to_string(entry.end - entry.begin) + " bytes");
    return entry;
  }

  // Like the reference reader: the tensors tile the data exactly, from its first byte to
  // the end of the file, without gaps or overlaps.
  void check_tiling(std::vector<Entry>& entries) const {
    std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
      return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
    });
    std::uint64_t covered = 0;
    const Entry* previous = nullptr;
    for (const Entry& entry : entries) {
      if (entry.begin < covered)
        fail("tensors '" + printable(previous->name) + "' " +
             span_str(previous->begin, previous->end) + " and '" + printable(entry.name) + "' " +
             span_str(entry.begin, entry.end) + " overlap");
      if (entry.begin > covered)
        fail("data bytes " + span_str(covered, entry.begin) + " belong to no tensor");
      covered = entry.end;
      previous = &entry;
    }
    if (covered != data_size_)
      fail("data bytes " + span_str(covered, data_size_) + " belong to no tensor");
  }

  const char* data_of(const Entry& entry) const {
    return bytes_.data() + data_begin_ + entry.begin;
  }

  // False for a file without qkv's checksums; throws if any checksum does not match.
  // Takes the checksum entry out of `metadata`.
  bool verify_checksums(const std::vector<Entry>& entries,
                        std::map<std::string, std::string>& metadata) const {
    const auto found = metadata.find(kChecksumKey);
    if (found == metadata.end()) return false;
    const std::string where = std::string("metadata '") + kChecksumKey + "'";
    const json sums = detail::parse_untrusted_json(found->second, 1, prefix_ + where);
    metadata.erase(found);
    if (!sums.is_object()) fail(where + " must be an object of checksums, found " + describe(sums));

    std::set<std::string> names{kMetadataKey};
    for (const Entry& entry : entries) names.insert(entry.name);
    for (const auto& [name, value] : sums.items()) {
      if (names.count(name) == 0)
        fail(where + " has a checksum for '" + printable(name) +
             "', which is no tensor of this file");
      if (!is_checksum(value))
        fail(where + " entry '" + printable(name) + "' must be 8 lowercase hex digits, found " +
             describe(value));
    }
    check_sum(sums, kMetadataKey, metadata_checksum(metadata),
              "the metadata do not match their checksum");
    for (const Entry& entry : entries)
      check_sum(sums, entry.name,
                tensor_checksum(entry.dtype, entry.shape, data_of(entry), entry.end - entry.begin),
                "tensor '" + printable(entry.name) + "' does not match its checksum");
    return true;
  }

  void check_sum(const json& sums, const std::string& name, const std::string& computed,
                 const std::string& mismatch) const {
    if (!sums.contains(name))
      fail(std::string("metadata '") + kChecksumKey + "' has no checksum for '" + printable(name) +
           "'");
    const std::string& stored = sums[name].get_ref<const std::string&>();
    if (stored != computed)
      fail(mismatch + " (stored crc32 " + printable(stored) + ", computed " + computed +
           "): the file is damaged");
  }

  Tensor copy_out(const Entry& entry) const {
    Tensor tensor = Tensor::empty(entry.shape, entry.dtype);
    if (entry.end > entry.begin)
      std::memcpy(raw_data(tensor), data_of(entry), entry.end - entry.begin);
    return tensor;
  }

  const std::string& bytes_;
  const std::string prefix_;
  std::uint64_t data_begin_ = 0;
  std::uint64_t data_size_ = 0;
};

// nlohmann refuses to write invalid UTF-8 with an exception that names neither the key
// nor the file; this names the key before the header is written.
void require_utf8(const std::string& text, const std::string& what) {
  try {
    (void)json(text).dump();
  } catch (const json::type_error&) {
    throw std::invalid_argument("safetensors: " + what + " is not valid UTF-8: " + printable(text));
  }
}

void check_encodable(const Safetensors& contents) {
  for (const auto& [name, tensor] : contents.tensors) {
    if (name == kMetadataKey) throw std::invalid_argument("a tensor may not be named __metadata__");
    if (!tensor.defined())
      throw std::invalid_argument("tensor '" + printable(name) + "' is undefined");
    require_utf8(name, "the tensor name");
  }
  for (const auto& [key, value] : contents.metadata) {
    if (key == kChecksumKey)
      throw std::invalid_argument(std::string("safetensors: the metadata key '") + kChecksumKey +
                                  "' is reserved for qkv's checksums");
    require_utf8(key, "the metadata key");
    require_utf8(value, "metadata '" + printable(key) + "'");
  }
}

// The file up to its data: the 8-byte header length and the header, whose offsets place
// the tensors' bytes in name order. Everything that can refuse the contents is checked
// here, before a byte is written.
std::string encode_header(const Safetensors& contents) {
  check_encodable(contents);
  json header = json::object();
  json sums = json::object();
  std::uint64_t offset = 0;
  for (const auto& [name, tensor] : contents.tensors) {
    const std::uint64_t size = tensor.numel() * dtype_bytes(tensor.dtype());
    header[name] = {{"dtype", dtype_tag(tensor.dtype())},
                    {"shape", tensor.shape()},
                    {"data_offsets", {offset, offset + size}}};
    sums[name] = tensor_checksum(tensor.dtype(), tensor.shape(), raw_data(tensor), size);
    offset += size;
  }
  sums[kMetadataKey] = metadata_checksum(contents.metadata);
  json metadata(contents.metadata);
  metadata[kChecksumKey] = sums.dump();
  header[kMetadataKey] = metadata;
  std::string header_text = header.dump();
  // Pad so the data starts 8-byte aligned, as the Python library does.
  header_text.append((kLengthBytes - header_text.size() % kLengthBytes) % kLengthBytes, ' ');

  const std::uint64_t header_length = header_text.size();
  std::string bytes(reinterpret_cast<const char*>(&header_length), kLengthBytes);
  return bytes + header_text;
}

// The file's bytes after the header: each tensor's values, in name order.
void write_data(const Safetensors& contents, const ByteSink& write) {
  for (const auto& [name, tensor] : contents.tensors)
    if (tensor.numel() > 0) write(raw_data(tensor), tensor.numel() * dtype_bytes(tensor.dtype()));
}

}  // namespace

std::string encode_safetensors(const Safetensors& contents) {
  std::string bytes = encode_header(contents);
  std::size_t total = bytes.size();
  for (const auto& [name, tensor] : contents.tensors)
    total += tensor.numel() * dtype_bytes(tensor.dtype());
  bytes.reserve(total);
  write_data(contents, [&](const char* data, std::size_t size) { bytes.append(data, size); });
  return bytes;
}

Safetensors decode_safetensors(const std::string& bytes, const std::string& source) {
  return Decoder(bytes, source).decode();
}

Safetensors read_safetensors(const std::string& path) {
  return decode_safetensors(read_file(path), path);
}

// Streamed: the header, then each tensor's values straight from the tensor, so that saving
// a model never holds a second copy of it as one buffer.
void write_safetensors(const std::string& path, const Safetensors& contents) {
  const std::string header = encode_header(contents);
  write_file_atomically(path, [&](const ByteSink& write) {
    write(header.data(), header.size());
    write_data(contents, write);
  });
}

}  // namespace qkv::io
