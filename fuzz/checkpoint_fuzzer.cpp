// libFuzzer target for the checkpoint loader (io/checkpoint.hpp), the code that reads
// files from other people. Any bytes must either load, and then save and load back the
// same, or throw a std::runtime_error whose message names the file and stays short.
// Anything else is a finding: a crash, a sanitizer report, another exception type
// (uncaught, so it aborts), a message without the file's name or a huge one.
//
// Built two ways by fuzz/CMakeLists.txt: with clang's libFuzzer (qkv_checkpoint_fuzzer),
// and with replay_main.cpp to replay fuzz/corpus/checkpoint/ in CTest.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>

#include "io/checkpoint.hpp"

namespace {

constexpr const char* kSource = "fuzzed.safetensors";
// Far above any real message (they quote at most a few hundred bytes of the file).
constexpr std::size_t kMaxMessageBytes = 2000;

[[noreturn]] void finding(const std::string& what, const std::string& detail) {
  std::fprintf(stderr, "checkpoint_fuzzer: %s: %s\n", what.c_str(), detail.c_str());
  std::abort();
}

bool same_tensors(const std::map<std::string, qkv::core::Tensor>& a,
                  const std::map<std::string, qkv::core::Tensor>& b) {
  if (a.size() != b.size()) return false;
  for (const auto& [name, tensor] : a) {
    const auto other = b.find(name);
    if (other == b.end() || other->second.dtype() != tensor.dtype() ||
        other->second.shape() != tensor.shape() || other->second.to_vector() != tensor.to_vector())
      return false;
  }
  return true;
}

bool same(const qkv::io::Checkpoint& a, const qkv::io::Checkpoint& b) {
  return same_tensors(a.weights, b.weights) &&
         same_tensors(a.optimizer.tensors, b.optimizer.tensors) &&
         a.optimizer.scalars == b.optimizer.scalars && a.optimizer_name == b.optimizer_name &&
         a.step == b.step && a.rng_states == b.rng_states && a.config_yaml == b.config_yaml &&
         a.task_state == b.task_state && a.vocabulary == b.vocabulary &&
         a.best_seq_acc == b.best_seq_acc && a.elapsed_s == b.elapsed_s;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  qkv::io::Checkpoint loaded;
  try {
    loaded = qkv::io::decode_checkpoint(bytes, kSource, nullptr);
  } catch (const std::runtime_error& error) {
    const std::string message = error.what();
    if (message.find(kSource) == std::string::npos)
      finding("an error that does not name the file", message);
    if (message.size() > kMaxMessageBytes)
      finding("an error message of " + std::to_string(message.size()) + " bytes",
              message.substr(0, 300));
    return 0;
  }
  // Whatever loads can be saved, and loads back as it was (an error here is a finding).
  const qkv::io::Checkpoint again =
      qkv::io::decode_checkpoint(qkv::io::encode_checkpoint(loaded), kSource, nullptr);
  if (!same(loaded, again)) finding("a checkpoint that changed on save and load", "");
  return 0;
}
