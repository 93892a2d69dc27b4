// The qkv command. Everything but main() is in train/cli.cpp, where tests can reach it.
#include <malloc.h>

#include <cstdio>
#include <string>
#include <vector>

#include "app/cli.hpp"

int main(int argc, char** argv) {
  // Each training step frees and reallocates the same activation and gradient buffers.
  // glibc would serve the large ones (>= 128 KiB) with fresh mmap'ed pages and give the
  // heap's top back to the system, so every step would pay page faults to zero-fill them
  // again; keeping freed memory in the heap makes the next step reuse it.
  mallopt(M_MMAP_THRESHOLD, 256 << 20);
  mallopt(M_TRIM_THRESHOLD, 1024 << 20);
  return qkv::app::run_cli(std::vector<std::string>(argv, argv + argc), stdout, stderr);
}
