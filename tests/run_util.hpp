// Helpers for tests that run training: fresh run folders, config files, reading logs, and
// running the qkv command in a forked child (a new process, as a user's resume would be).
#pragma once

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "app/cli.hpp"

namespace qkv::test {

// An empty folder under the build tree, named for the test and this process: CTest runs
// test cases in parallel processes, which must not wipe each other's folders. Folders of
// the same name left by processes that have ended are removed.
inline std::string fresh_dir(const std::string& name) {
  const std::filesystem::path runs = std::filesystem::path(QKV_BINARY_DIR) / "test_runs";
  std::error_code ignored;
  for (const auto& entry : std::filesystem::directory_iterator(runs, ignored)) {
    const std::string file = entry.path().filename().string();
    if (file.compare(0, name.size() + 1, name + ".") != 0) continue;
    const long pid = std::strtol(file.c_str() + name.size() + 1, nullptr, 10);
    if (pid > 0 && ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH)
      std::filesystem::remove_all(entry.path(), ignored);
  }
  const std::filesystem::path dir = runs / (name + "." + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir.string();
}

inline std::string write_text(const std::string& path, const std::string& text) {
  std::ofstream(path) << text;
  return path;
}

inline std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

inline std::vector<nlohmann::json> read_jsonl(const std::string& path) {
  std::vector<nlohmann::json> lines;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) lines.push_back(nlohmann::json::parse(line));
  return lines;
}

// The qkv command in this process, its output and errors captured.
struct CliResult {
  int code = -1;
  std::string out;
  std::string err;
};

inline CliResult run_qkv(std::vector<std::string> args) {
  args.insert(args.begin(), "qkv");
  std::FILE* out = std::tmpfile();
  std::FILE* err = std::tmpfile();
  CliResult result;
  result.code = qkv::app::run_cli(args, out, err);
  for (auto [file, text] : {std::pair{out, &result.out}, std::pair{err, &result.err}}) {
    std::rewind(file);
    char buffer[4096];
    for (std::size_t n; (n = std::fread(buffer, 1, sizeof buffer, file)) > 0;) text->append(buffer, n);
    std::fclose(file);
  }
  return result;
}

// A failed command reported as qkv reports errors: a non-zero exit and one line on stderr,
// "qkv: error: ...", that contains `text`.
inline void check_one_line_error(const CliResult& result, const std::string& text) {
  CAPTURE(result.out);
  CAPTURE(result.err);
  CHECK(result.code != 0);
  CHECK(result.err.rfind("qkv: error: ", 0) == 0);
  CHECK(result.err.find(text) != std::string::npos);
  CHECK(result.err.find('\n') == result.err.size() - 1);
}

// The qkv command in a forked child (output discarded); returns its exit code.
inline int run_qkv_in_child(std::vector<std::string> args) {
  std::fflush(nullptr);
  const pid_t child = fork();
  if (child == 0) {
    args.insert(args.begin(), "qkv");
    std::FILE* sink = std::fopen("/dev/null", "w");
    _exit(qkv::app::run_cli(args, sink, sink));
  }
  int status = 0;
  if (child < 0 || waitpid(child, &status, 0) != child || !WIFEXITED(status)) return -1;
  return WEXITSTATUS(status);
}

}  // namespace qkv::test
