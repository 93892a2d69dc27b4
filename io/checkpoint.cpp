// Checkpoint <-> safetensors (see checkpoint.hpp). Structured metadata values (maps,
// lists, doubles) are JSON text, which keeps doubles exact (shortest round-trip form).
#include "io/checkpoint.hpp"

#include <cmath>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "io/atomic_file.hpp"
#include "io/safetensors.hpp"
#include "io/untrusted_json.hpp"

namespace qkv::io {

namespace {

using detail::printable;
using json = nlohmann::json;

constexpr const char* kFormat = "qkv-checkpoint";
constexpr const char* kOptimizerPrefix = "optim.";
// Every structured value is an object or a list of scalars: one level deep.
constexpr std::size_t kMaxMetadataDepth = 1;

bool starts_with(const std::string& text, const std::string& prefix) {
  return text.compare(0, prefix.size(), prefix) == 0;
}

// Reads the metadata of one checkpoint file, naming the file in every error.
class MetadataReader {
 public:
  MetadataReader(const std::map<std::string, std::string>& metadata, const std::string& source)
      : metadata_(metadata), prefix_("checkpoint '" + source + "': ") {}

  [[noreturn]] void fail(const std::string& problem) const {
    throw std::runtime_error(prefix_ + problem);
  }

  bool has(const std::string& key) const { return metadata_.count(key) > 0; }

  const std::string& text(const std::string& key) const {
    auto it = metadata_.find(key);
    if (it == metadata_.end()) fail("metadata has no '" + key + "'");
    return it->second;
  }

  json parsed(const std::string& key) const {
    return detail::parse_untrusted_json(text(key), kMaxMetadataDepth,
                                        prefix_ + "metadata '" + key + "'");
  }

  std::size_t count(const std::string& key) const {
    json value = parsed(key);
    if (!value.is_number_unsigned()) wrong(key, "a non-negative integer");
    return value.get<std::size_t>();
  }

  double number(const std::string& key) const {
    json value = parsed(key);
    if (!value.is_number()) wrong(key, "a number");
    return value.get<double>();
  }

  // An object whose values are all of one kind. Stricter than nlohmann's get<>, which
  // would turn true into 1.0.
  template <class T>
  std::map<std::string, T> object_of(const std::string& key, bool (json::*is_kind)() const,
                                     const char* expected) const {
    json value = parsed(key);
    if (!value.is_object()) wrong(key, expected);
    std::map<std::string, T> result;
    for (const auto& [name, entry] : value.items()) {
      if (!(entry.*is_kind)()) wrong(key, expected);
      result[name] = entry.template get<T>();
    }
    return result;
  }

  std::vector<std::string> strings(const std::string& key) const {
    json value = parsed(key);
    if (!value.is_array()) wrong(key, "a list of strings");
    std::vector<std::string> result;
    for (const json& entry : value) {
      if (!entry.is_string()) wrong(key, "a list of strings");
      result.push_back(entry.get<std::string>());
    }
    return result;
  }

  [[noreturn]] void wrong(const std::string& key, const char* expected) const {
    fail("metadata '" + key + "' must be " + expected + ", found " + printable(text(key)));
  }

 private:
  const std::map<std::string, std::string>& metadata_;
  const std::string prefix_;
};

// NaN and infinities are refused: a model or optimizer holding one only produces NaN
// (an eval would print "loss": null and succeed).
template <class T>
void check_finite(const T* values, std::size_t count, const std::string& what,
                  const MetadataReader& meta) {
  for (std::size_t i = 0; i < count; ++i) {
    if (std::isfinite(values[i])) continue;
    const char* value = std::isnan(values[i]) ? "nan" : values[i] > 0 ? "inf" : "-inf";
    meta.fail(what + " holds " + value + " at element " + std::to_string(i) + " (of " +
              std::to_string(count) + "): a checkpoint's values must be finite");
  }
}

void check_finite(const core::Tensor& tensor, const std::string& what, const MetadataReader& meta) {
  if (tensor.dtype() == core::DType::f32)
    check_finite(tensor.data<float>(), tensor.numel(), what, meta);
  else
    check_finite(tensor.data<double>(), tensor.numel(), what, meta);
}

Checkpoint read_contents(Safetensors& file, const MetadataReader& meta, int version) {
  Checkpoint checkpoint;
  for (auto& [name, tensor] : file.tensors) {
    if (starts_with(name, kOptimizerPrefix)) {
      const std::string state = name.substr(std::char_traits<char>::length(kOptimizerPrefix));
      check_finite(tensor, "optimizer state '" + printable(state) + "'", meta);
      checkpoint.optimizer.tensors[state] = tensor;
    } else {
      check_finite(tensor, "weight '" + printable(name) + "'", meta);
      checkpoint.weights[name] = tensor;
    }
  }
  checkpoint.step = meta.count("step");
  checkpoint.rng_states =
      meta.object_of<std::string>("rng_states", &json::is_string, "an object of strings");
  checkpoint.config_yaml = meta.text("config");
  checkpoint.optimizer_name = meta.text("optimizer");
  // JSON has no NaN or infinity, and a number too large for a double ("1e999") is not
  // valid JSON here, so these are finite.
  checkpoint.optimizer.scalars =
      meta.object_of<double>("optimizer_scalars", &json::is_number, "an object of numbers");
  checkpoint.task_state = meta.text("task_state");
  if (version >= 2) checkpoint.vocabulary = meta.strings("vocabulary");
  if (!meta.parsed("best_seq_acc").is_null()) {
    const double best = meta.number("best_seq_acc");
    if (!(best >= 0 && best <= 1)) meta.wrong("best_seq_acc", "null or a number in [0, 1]");
    checkpoint.best_seq_acc = best;
  }
  checkpoint.elapsed_s = meta.number("elapsed_s");
  if (checkpoint.elapsed_s < 0) meta.wrong("elapsed_s", "a non-negative number");
  if (meta.has("ranks")) {
    checkpoint.ranks = meta.count("ranks");
    if (checkpoint.ranks == 0) meta.wrong("ranks", "a positive integer");
    checkpoint.rank_batch = meta.count("rank_batch");
  }
  return checkpoint;
}

// The file's contents: the tensors (shared with the checkpoint, not copied) and the metadata.
Safetensors to_safetensors(const Checkpoint& checkpoint) {
  Safetensors file;
  for (const auto& [name, tensor] : checkpoint.weights) {
    if (starts_with(name, kOptimizerPrefix))
      throw std::invalid_argument("checkpoint: a weight may not be named '" + name +
                                  "': the prefix 'optim.' is reserved for optimizer state");
    file.tensors[name] = tensor;
  }
  for (const auto& [name, tensor] : checkpoint.optimizer.tensors)
    file.tensors[kOptimizerPrefix + name] = tensor;

  auto& meta = file.metadata;
  meta["format"] = kFormat;
  meta["format_version"] = std::to_string(kCheckpointFormatVersion);
  meta["step"] = std::to_string(checkpoint.step);
  meta["rng_states"] = json(checkpoint.rng_states).dump();
  meta["config"] = checkpoint.config_yaml;
  meta["optimizer"] = checkpoint.optimizer_name;
  meta["optimizer_scalars"] = json(checkpoint.optimizer.scalars).dump();
  meta["task_state"] = checkpoint.task_state;
  meta["vocabulary"] = json(checkpoint.vocabulary).dump();
  meta["best_seq_acc"] = checkpoint.best_seq_acc ? json(*checkpoint.best_seq_acc).dump() : "null";
  meta["elapsed_s"] = json(checkpoint.elapsed_s).dump();
  meta["ranks"] = std::to_string(checkpoint.ranks);
  meta["rank_batch"] = std::to_string(checkpoint.rank_batch);
  return file;
}

}  // namespace

std::string encode_checkpoint(const Checkpoint& checkpoint) {
  return encode_safetensors(to_safetensors(checkpoint));
}

Checkpoint decode_checkpoint(const std::string& bytes, const std::string& source,
                             std::FILE* warnings) {
  Safetensors file = decode_safetensors(bytes, source);
  MetadataReader meta(file.metadata, source);
  if (meta.text("format") != kFormat)
    meta.fail("metadata 'format' is '" + printable(meta.text("format")) + "', expected '" +
              kFormat + "'");
  int version = 0;
  for (int known = kOldestCheckpointFormatVersion; known <= kCheckpointFormatVersion; ++known)
    if (meta.text("format_version") == std::to_string(known)) version = known;
  if (version == 0)
    meta.fail("format version " + printable(meta.text("format_version")) +
              " is not supported (this qkv reads versions " +
              std::to_string(kOldestCheckpointFormatVersion) + " to " +
              std::to_string(kCheckpointFormatVersion) + ")");
  Checkpoint checkpoint = read_contents(file, meta, version);
  // Only for a file that loads: a damaged one gets its error, not a warning as well.
  if (!file.verified && warnings != nullptr)
    std::fprintf(warnings,
                 "warning: checkpoint '%s' has no checksums (written by an older qkv or another "
                 "tool), so damage to it cannot be detected\n",
                 source.c_str());
  return checkpoint;
}

void save_checkpoint(const std::string& path, const Checkpoint& checkpoint) {
  write_safetensors(path, to_safetensors(checkpoint));
}

Checkpoint load_checkpoint(const std::string& path, std::FILE* warnings) {
  return decode_checkpoint(read_file(path), path, warnings);
}

}  // namespace qkv::io
