// Replays committed fuzzing corpora without libFuzzer, so CI needs no clang: every regular
// file of every folder given, in name order, goes once through the target's
// LLVMFuzzerTestOneInput, linked in beside this file. A finding aborts (failing the CTest
// test that runs this); an empty or missing folder fails too, so a corpus that went
// missing is not a silent pass.
//
//   qkv_checkpoint_replay fuzz/corpus/checkpoint
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <system_error>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace fs = std::filesystem;

namespace {

// The folder's regular files in name order; empty if it cannot be listed.
std::vector<fs::path> inputs_in(const fs::path& folder) {
  std::vector<fs::path> files;
  std::error_code error;
  for (const auto& entry : fs::directory_iterator(folder, error))
    if (entry.is_regular_file()) files.push_back(entry.path());
  std::sort(files.begin(), files.end());
  return files;
}

std::string contents(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s <corpus folder>...\n", argv[0]);
    return 2;
  }
  for (int i = 1; i < argc; ++i) {
    const std::vector<fs::path> files = inputs_in(argv[i]);
    if (files.empty()) {
      std::fprintf(stderr, "%s: no inputs in '%s'\n", argv[0], argv[i]);
      return 1;
    }
    for (const fs::path& file : files) {
      const std::string bytes = contents(file);
      std::fprintf(stderr, "%s\n", file.c_str());  // the input that aborts is the last named
      LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
    }
    std::printf("replayed %zu inputs from '%s'\n", files.size(), argv[i]);
  }
  return 0;
}
