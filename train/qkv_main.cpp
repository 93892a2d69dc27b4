// The qkv command. Everything but main() is in train/cli.cpp, where tests can reach it.
#include <cstdio>
#include <string>
#include <vector>

#include "train/cli.hpp"

int main(int argc, char** argv) {
  return qkv::train::run_cli(std::vector<std::string>(argv, argv + argc), stdout, stderr);
}
