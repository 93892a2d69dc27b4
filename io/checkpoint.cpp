// Checkpoint <-> safetensors (see checkpoint.hpp). Structured metadata values (maps,
// lists, doubles) are JSON text, which keeps doubles exact (shortest round-trip form).
#include "io/checkpoint.hpp"

#include <stdexcept>

#include <nlohmann/json.hpp>

#include "io/safetensors.hpp"

namespace qkv::io {

namespace {

using json = nlohmann::json;

constexpr const char* kFormat = "qkv-checkpoint";
constexpr const char* kOptimizerPrefix = "optim.";

bool starts_with(const std::string& text, const std::string& prefix) {
  return text.compare(0, prefix.size(), prefix) == 0;
}

// Reads the metadata of one checkpoint file, naming the file in every error.
class MetadataReader {
 public:
  MetadataReader(const std::map<std::string, std::string>& metadata, const std::string& path)
      : metadata_(metadata), path_(path) {}

  [[noreturn]] void fail(const std::string& problem) const {
    throw std::runtime_error("checkpoint '" + path_ + "': " + problem);
  }

  const std::string& text(const std::string& key) const {
    auto it = metadata_.find(key);
    if (it == metadata_.end()) fail("metadata has no '" + key + "'");
    return it->second;
  }

  json parsed(const std::string& key) const {
    json value = json::parse(text(key), nullptr, /*allow_exceptions=*/false);
    if (value.is_discarded()) fail("metadata '" + key + "' is not valid JSON: " + text(key));
    return value;
  }

  std::size_t count(const std::string& key) const {
    json value = parsed(key);
    if (!value.is_number_unsigned())
      fail("metadata '" + key + "' must be a non-negative integer, found " + text(key));
    return value.get<std::size_t>();
  }

  double number(const std::string& key) const {
    json value = parsed(key);
    if (!value.is_number()) fail("metadata '" + key + "' must be a number, found " + text(key));
    return value.get<double>();
  }

  template <class T>
  T typed(const std::string& key, const char* expected) const {
    json value = parsed(key);
    try {
      return value.get<T>();
    } catch (const json::exception&) {
      fail("metadata '" + key + "' must be " + expected + ", found " + text(key));
    }
  }

 private:
  const std::map<std::string, std::string>& metadata_;
  const std::string& path_;
};

}  // namespace

void save_checkpoint(const std::string& path, const Checkpoint& checkpoint) {
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
  meta["best_seq_acc"] = checkpoint.best_seq_acc ? json(*checkpoint.best_seq_acc).dump() : "null";
  meta["elapsed_s"] = json(checkpoint.elapsed_s).dump();
  write_safetensors(path, file);
}

Checkpoint load_checkpoint(const std::string& path) {
  Safetensors file = read_safetensors(path);
  MetadataReader meta(file.metadata, path);
  if (meta.text("format") != kFormat)
    meta.fail("metadata 'format' is '" + meta.text("format") + "', expected '" + kFormat + "'");
  if (meta.text("format_version") != std::to_string(kCheckpointFormatVersion))
    meta.fail("format version " + meta.text("format_version") + " is not supported (this qkv reads version " +
              std::to_string(kCheckpointFormatVersion) + ")");

  Checkpoint checkpoint;
  for (auto& [name, tensor] : file.tensors) {
    if (starts_with(name, kOptimizerPrefix))
      checkpoint.optimizer.tensors[name.substr(std::char_traits<char>::length(kOptimizerPrefix))] =
          tensor;
    else
      checkpoint.weights[name] = tensor;
  }
  checkpoint.step = meta.count("step");
  checkpoint.rng_states =
      meta.typed<std::map<std::string, std::string>>("rng_states", "an object of strings");
  checkpoint.config_yaml = meta.text("config");
  checkpoint.optimizer_name = meta.text("optimizer");
  checkpoint.optimizer.scalars =
      meta.typed<std::map<std::string, double>>("optimizer_scalars", "an object of numbers");
  checkpoint.task_state = meta.text("task_state");
  json best = meta.parsed("best_seq_acc");
  if (!best.is_null()) checkpoint.best_seq_acc = meta.number("best_seq_acc");
  checkpoint.elapsed_s = meta.number("elapsed_s");
  return checkpoint;
}

}  // namespace qkv::io
