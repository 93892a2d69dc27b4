// The kill test: a child process writing checkpoints in a loop is SIGKILLed at random
// moments; the file it writes must always load and hold either the old or the new state.
#include <doctest/doctest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "core/random.hpp"
#include "core/tensor.hpp"
#include "io/checkpoint.hpp"

using qkv::core::Tensor;
using qkv::io::Checkpoint;
using qkv::io::load_checkpoint;
using qkv::io::save_checkpoint;

namespace {

// One state of the "training run": every value of every tensor equals the step, so a
// file mixing two writes (or a truncated one) is caught.
Checkpoint state_at(std::size_t step) {
  Checkpoint checkpoint;
  // About 1 MB, so that kills often land in the middle of a write.
  checkpoint.weights["weights"] = Tensor::full({512, 512}, static_cast<double>(step));
  checkpoint.optimizer.tensors["weights.exp_avg"] = Tensor::full({64}, static_cast<double>(step));
  checkpoint.optimizer.scalars["step"] = static_cast<double>(step);
  checkpoint.step = step;
  return checkpoint;
}

// How many temp files of `path` (`<path>.tmp.<pid>.<n>`) its folder holds.
int temp_files(const std::string& path) {
  const std::filesystem::path file(path);
  const std::string prefix = file.filename().string() + ".tmp.";
  int count = 0;
  for (const auto& entry : std::filesystem::directory_iterator(file.parent_path()))
    count += entry.path().filename().string().rfind(prefix, 0) == 0;
  return count;
}

// The step a file holds, checking that it is one consistent state.
std::size_t consistent_step(const std::string& path) {
  Checkpoint loaded = load_checkpoint(path);
  const std::size_t step = loaded.step;
  CHECK(loaded.optimizer.scalars.at("step") == static_cast<double>(step));
  std::map<std::string, Tensor> tensors = loaded.weights;
  tensors.insert(loaded.optimizer.tensors.begin(), loaded.optimizer.tensors.end());
  for (const auto& [name, tensor] : tensors) {
    std::vector<double> values = tensor.to_vector();
    for (double value : values)
      if (value != static_cast<double>(step)) {
        FAIL("tensor '" << name << "' holds " << value << " in a file of step " << step);
        return step;
      }
  }
  return step;
}

// Never returns: writes states step+1, step+2, ... until killed.
[[noreturn]] void write_forever(const std::string& path, std::size_t step) {
  try {
    for (;;) save_checkpoint(path, state_at(++step));
  } catch (...) {
    _exit(3);
  }
}

}  // namespace

TEST_CASE("checkpoint: a writer killed at random moments leaves the old or the new file") {
  const std::string path = std::string(QKV_BINARY_DIR) + "/test_kill_last.safetensors";
  save_checkpoint(path, state_at(0));
  qkv::core::Rng rng(2024);
  std::size_t last_step = 0;
  const int kills = 30;
  int kills_during_a_write = 0;
  for (int round = 0; round < kills; ++round) {
    std::fflush(nullptr);  // nothing buffered may be written twice by the child
    pid_t child = fork();
    REQUIRE(child >= 0);
    if (child == 0) write_forever(path, last_step);

    std::this_thread::sleep_for(std::chrono::microseconds(1000 + rng.below(30000)));
    REQUIRE(kill(child, SIGKILL) == 0);
    int status = 0;
    REQUIRE(waitpid(child, &status, 0) == child);
    // Killed by us, not exited on an error of its own.
    REQUIRE(WIFSIGNALED(status));
    // Each write renames its temp file away: one still there was being written. Each
    // writer removes the temp files of the killed ones before it, so there is never more
    // than this one.
    const int temps = temp_files(path);
    CHECK(temps <= 1);
    kills_during_a_write += temps;

    CAPTURE(round);
    std::size_t step = consistent_step(path);
    CHECK(step >= last_step);  // never goes back to an older state
    last_step = step;
  }
  // The writers made progress, so the kills hit a working writer (shown on failure).
  INFO(kills_during_a_write << " of " << kills << " kills landed during a write; " << last_step
                            << " checkpoints written in all");
  CHECK(last_step > 0);
  save_checkpoint(path, state_at(last_step + 1));
  CHECK(temp_files(path) == 0);  // the last killed writer's is gone too
  std::remove(path.c_str());
}
