// libFuzzer target for the config loader (train/config.hpp over strict_yaml/): a config
// file's text and its --set overrides, the text users type. The input is the file's text,
// then, after each NUL byte, one `key.path=value` override.
//
// Any input must either be refused with a std::runtime_error (ConfigError is one) whose
// message is one line of at most 2000 bytes opening with where the error is (the file, or
// --set when there are overrides), or read as a Config. Then, when its run is small (memory
// estimate under 64 MB: building is the slow part, not the one fuzzed), the model is
// built (its layers read their keys), and the resolved config it writes must read back
// to the same text, both as a run folder's config.yaml and as a checkpoint's saved config
// (parse_checkpoint_config, with the task's saved state). Anything else is a finding: a
// crash, a sanitizer report, another exception type (uncaught, so it aborts), a long or
// multi-line message, a resolved config that does not read back the same.
//
// Built two ways by fuzz/CMakeLists.txt: with clang's libFuzzer (qkv_config_fuzzer), and
// with replay_main.cpp to replay fuzz/corpus/config/ in CTest. Relative data paths
// resolve against the current folder: run it in configs/ so that the file task's seeds
// find their data. A fuzzed config may name any path as a data file; the file task reads
// it as it would for a user (regular files only, size-capped), so run the fuzzer where
// reading any file is harmless.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/random.hpp"
#include "layers/build_model.hpp"
#include "train/config.hpp"
#include "train/resources.hpp"

namespace {

constexpr const char* kSource = "fuzzed.yaml";
constexpr std::size_t kMaxMessageBytes = 2000;
constexpr std::size_t kMaxBuiltBytes = 64u << 20;

[[noreturn]] void finding(const std::string& what, const std::string& detail) {
  std::fprintf(stderr, "config_fuzzer: %s: %s\n", what.c_str(), detail.substr(0, 2000).c_str());
  std::abort();
}

void check_message(const std::exception& error, bool has_overrides) {
  const std::string message = error.what();
  if (message.size() > kMaxMessageBytes)
    finding("an error message of " + std::to_string(message.size()) + " bytes", message);
  if (message.find('\n') != std::string::npos)
    finding("an error message of several lines", message);
  // The source opens the message ("fuzzed.yaml:3:5: ..." or "--set: ..."); further on,
  // "--set" may be quoted text.
  const bool names_file = message.rfind(kSource, 0) == 0;
  const bool names_set = message.rfind("--set", 0) == 0;
  if (!names_file && !(has_overrides && names_set))
    finding("an error that does not say where it is", message);
  if (names_set && !has_overrides) finding("an error blamed on --set without one", message);
}

// The text up to the first NUL, then each piece after a NUL (an override).
std::vector<std::string> split_at_nul(const std::string& bytes) {
  std::vector<std::string> pieces;
  std::size_t start = 0;
  for (std::size_t nul; (nul = bytes.find('\0', start)) != std::string::npos; start = nul + 1)
    pieces.push_back(bytes.substr(start, nul - start));
  pieces.push_back(bytes.substr(start));
  return pieces;
}

// Builds the model (so every layer records its defaults) and returns the resolved text.
std::string built_and_resolved(const qkv::train::Config& config, const std::string& task_state) {
  const auto task = config.make_task(task_state);
  qkv::core::Rng rng(config.seed);
  qkv::layers::build_model(config.model, task->vocab_size(), task->max_seq_len(), rng);
  return qkv::train::to_yaml(config);
}

// The resolved text of a config small enough to build, "" for a larger one.
std::string resolved_if_small(const qkv::train::Config& config, const qkv::tasks::Task& task) {
  const qkv::train::MemoryEstimate need =
      qkv::train::estimate_memory(config, task.vocab_size(), task.max_seq_len(), false);
  return need.total() > kMaxBuiltBytes ? "" : built_and_resolved(config, "");
}

void check_round_trip(const qkv::train::Config& config, bool has_overrides) {
  const auto task = config.make_task();
  const std::string state = task->state();
  std::string resolved;
  try {
    resolved = resolved_if_small(config, *task);
  } catch (const std::runtime_error& error) {
    // A layer's own keys are checked when the model is estimated (the attention's
    // projections and qk) or built.
    check_message(error, has_overrides);
    return;
  }
  if (resolved.empty()) return;
  for (const bool saved : {false, true}) {
    std::string again;
    try {
      again = saved ? built_and_resolved(
                          qkv::train::parse_checkpoint_config(resolved, "saved.yaml", state), state)
                    : built_and_resolved(qkv::train::parse_config(resolved, "resolved.yaml"), "");
    } catch (const std::exception& error) {
      finding("a resolved config that does not read back", error.what() + ("\n" + resolved));
    }
    if (again != resolved)
      finding("a resolved config that reads back otherwise", resolved + "\n" + again);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::vector<std::string> pieces =
      split_at_nul(std::string(reinterpret_cast<const char*>(data), size));
  const std::string text = pieces.front();
  const std::vector<std::string> overrides(pieces.begin() + 1, pieces.end());
  qkv::train::Config config;
  try {
    config = qkv::train::parse_config(text, kSource, overrides);
  } catch (const std::runtime_error& error) {
    check_message(error, !overrides.empty());
    return 0;
  }
  check_round_trip(config, !overrides.empty());
  return 0;
}
