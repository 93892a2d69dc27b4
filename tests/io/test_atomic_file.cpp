// Atomic writes (issue #12): a failed write leaves no temp file behind and the old file
// as it was; writers never share a temp file; killed writers' temp files are cleaned up.
#include <doctest/doctest.h>

#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "io/atomic_file.hpp"

namespace fs = std::filesystem;
using qkv::io::read_file;
using qkv::io::write_file_atomically;

namespace {

// A fresh, empty folder for one test.
std::string fresh_folder(const std::string& name) {
  const fs::path folder = fs::path(QKV_BINARY_DIR) / "test_atomic_file" / name;
  fs::remove_all(folder);
  fs::create_directories(folder);
  return folder.string();
}

// The names in `folder` that start with `file` + ".tmp".
std::vector<std::string> temp_files(const std::string& folder, const std::string& file) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(folder)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind(file + ".tmp", 0) == 0) names.push_back(name);
  }
  return names;
}

// Runs `body` in a child process and returns what it returned (the child's changes to
// rlimits, signals or mounts stay there); "crashed" if it did not finish.
std::string in_child(const std::function<std::string()>& body) {
  int pipe_fds[2];
  REQUIRE(::pipe(pipe_fds) == 0);
  std::fflush(nullptr);  // nothing buffered may be written twice by the child
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    ::close(pipe_fds[0]);
    std::string result;
    try {
      result = body();
    } catch (const std::exception& error) {
      result = std::string("unexpected exception: ") + error.what();
    }
    ssize_t ignored = ::write(pipe_fds[1], result.data(), result.size());
    (void)ignored;
    ::_exit(0);
  }
  ::close(pipe_fds[1]);
  std::string result;
  char buffer[4096];
  for (ssize_t got; (got = ::read(pipe_fds[0], buffer, sizeof buffer)) > 0;)
    result.append(buffer, static_cast<std::size_t>(got));
  ::close(pipe_fds[0]);
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? result : "crashed";
}

// The error a write throws, or "" if it succeeds.
std::string write_error(const std::string& path, const std::string& bytes) {
  try {
    write_file_atomically(path, bytes);
    return "";
  } catch (const std::runtime_error& error) {
    return error.what();
  }
}

// A pid that no process has: a child that has exited and been reaped.
pid_t dead_pid() {
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) ::_exit(0);
  REQUIRE(::waitpid(child, nullptr, 0) == child);
  return child;
}

}  // namespace

TEST_CASE("atomic_file: a write that fails on a full disk leaves no temp file and the old file") {
  const std::string folder = fresh_folder("file_size_limit");
  const std::string path = folder + "/last.safetensors";
  write_file_atomically(path, std::string(1000, 'a'));
  // RLIMIT_FSIZE makes write() fail with EFBIG part way, as a full disk does with ENOSPC.
  const std::string error = in_child([&] {
    ::signal(SIGXFSZ, SIG_IGN);
    const rlimit limit{4096, RLIM_INFINITY};
    if (::setrlimit(RLIMIT_FSIZE, &limit) != 0) return std::string("setrlimit failed");
    return write_error(path, std::string(100000, 'b'));
  });
  CHECK(error.find("cannot write '" + path + ".tmp.") != std::string::npos);
  CHECK(error.find("File too large") != std::string::npos);
  CHECK(read_file(path) == std::string(1000, 'a'));
  CHECK(temp_files(folder, "last.safetensors").empty());
}

TEST_CASE("atomic_file: disk full on a small tmpfs (needs root: a private mount namespace)") {
  const std::string folder = fresh_folder("tmpfs");
  const std::string result = in_child([&] {
    if (::unshare(CLONE_NEWNS) != 0) return std::string("skip: unshare: ") + std::strerror(errno);
    if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
        ::mount("tmpfs", folder.c_str(), "tmpfs", 0, "size=64k") != 0)
      return std::string("skip: mount: ") + std::strerror(errno);
    const std::string path = folder + "/last.safetensors";
    write_file_atomically(path, std::string(20000, 'a'));
    const std::string error = write_error(path, std::string(100000, 'b'));
    const bool old_kept = read_file(path) == std::string(20000, 'a');
    const bool no_temp = temp_files(folder, "last.safetensors").empty();
    // The failed write gave its space back, so a retry of the same size succeeds.
    const std::string retry = write_error(path, std::string(30000, 'c'));
    return error + "|" + (old_kept ? "old kept" : "old changed") + "|" +
           (no_temp ? "no temp" : "temp left") + "|" + (retry.empty() ? "retry ok" : retry);
  });
  if (result.rfind("skip:", 0) == 0) {
    MESSAGE("not run: " << result);
    return;
  }
  CHECK(result.find("cannot write '" + folder + "/last.safetensors.tmp.") != std::string::npos);
  CHECK(result.find("No space left on device|old kept|no temp|retry ok") != std::string::npos);
}

TEST_CASE("atomic_file: other failures leave no temp file either") {
  const std::string folder = fresh_folder("failures");
  SUBCASE("the rename is refused: the path is a folder") {
    fs::create_directories(folder + "/taken/inside");
    const std::string error = write_error(folder + "/taken", "bytes");
    CHECK(error.find("cannot rename to '" + folder + "/taken'") != std::string::npos);
    CHECK(temp_files(folder, "taken").empty());
  }
  SUBCASE("the parent folder does not exist") {
    const std::string error = write_error(folder + "/missing/last.safetensors", "bytes");
    CHECK(error.find("cannot create '" + folder + "/missing/last.safetensors.tmp.") !=
          std::string::npos);
    CHECK(error.find("No such file or directory") != std::string::npos);
    CHECK_FALSE(fs::exists(folder + "/missing"));
  }
  SUBCASE("a path holding a NUL byte is refused, not cut short") {
    const std::string path = folder + "/last" + std::string(1, '\0') + "x";
    CHECK_THROWS_WITH_AS(write_file_atomically(path, "bytes"),
                         doctest::Contains("last\\x00x' contains a NUL byte"),
                         std::invalid_argument);
    CHECK(fs::is_empty(folder));
  }
}

TEST_CASE("atomic_file: a streamed write is its pieces in order") {
  const std::string folder = fresh_folder("streamed");
  const std::string path = folder + "/last.safetensors";
  // Small pieces are gathered, pieces over 64 KiB go out as they are, empty ones are nothing.
  const std::string small = "header:", large(200000, 'x'), tail = "end";
  write_file_atomically(path, [&](const qkv::io::ByteSink& write) {
    write(small.data(), small.size());
    write(large.data(), large.size());
    write(tail.data(), 0);
    for (int i = 0; i < 30000; ++i) write(tail.data(), tail.size());
  });
  std::string expected = small + large;
  for (int i = 0; i < 30000; ++i) expected += tail;
  CHECK(read_file(path) == expected);
  CHECK(temp_files(folder, "last.safetensors").empty());
}

TEST_CASE("atomic_file: a streamed write that fails part way leaves the old file and no temp") {
  const std::string folder = fresh_folder("streamed_failure");
  const std::string path = folder + "/last.safetensors";
  write_file_atomically(path, std::string(1000, 'a'));
  const std::string piece(100000, 'b');
  SUBCASE("the producer throws after writing some pieces") {
    CHECK_THROWS_WITH_AS(write_file_atomically(path,
                                               [&](const qkv::io::ByteSink& write) {
                                                 write(piece.data(), piece.size());
                                                 write(piece.data(), 10);
                                                 throw std::runtime_error("tensor went away");
                                               }),
                         "tensor went away", std::runtime_error);
  }
  SUBCASE("the disk fills up in the middle of the pieces") {
    const std::string error = in_child([&] {
      ::signal(SIGXFSZ, SIG_IGN);
      const rlimit limit{150000, RLIM_INFINITY};
      if (::setrlimit(RLIMIT_FSIZE, &limit) != 0) return std::string("setrlimit failed");
      try {
        write_file_atomically(path, [&](const qkv::io::ByteSink& write) {
          for (int i = 0; i < 3; ++i) write(piece.data(), piece.size());
        });
      } catch (const std::runtime_error& failure) {
        return std::string(failure.what());
      }
      return std::string("no error");
    });
    CHECK(error.find("cannot write '" + path + ".tmp.") != std::string::npos);
    CHECK(error.find("File too large") != std::string::npos);
  }
  CHECK(read_file(path) == std::string(1000, 'a'));
  CHECK(temp_files(folder, "last.safetensors").empty());
}

TEST_CASE("atomic_file: writers never share a temp file") {
  const std::string folder = fresh_folder("shared");
  const std::string path = folder + "/last.safetensors";
  // Another writer's files: the old shared name, and a unique one of a live process (pid
  // 1 always exists). Before unique names, a second writer truncated and renamed the
  // first one's temp file.
  write_file_atomically(path + ".tmp", "theirs");
  write_file_atomically(path + ".tmp.1.0", "theirs too");
  write_file_atomically(path, "mine");
  CHECK(read_file(path) == "mine");
  CHECK(read_file(path + ".tmp") == "theirs");
  CHECK(read_file(path + ".tmp.1.0") == "theirs too");
}

TEST_CASE("atomic_file: the next write removes the temp files of killed writers") {
  const std::string folder = fresh_folder("dead");
  const std::string path = folder + "/last.safetensors";
  const std::string dead = path + ".tmp." + std::to_string(dead_pid()) + ".3";
  write_file_atomically(dead, "left by a killed writer");
  write_file_atomically(folder + "/other.tmp.1.0", "another file's");
  write_file_atomically(path, "new");
  CHECK_FALSE(fs::exists(dead));
  CHECK(read_file(folder + "/other.tmp.1.0") == "another file's");
  CHECK(temp_files(folder, "last.safetensors").empty());
}

TEST_CASE("atomic_file: read_file refuses what is not a regular file, without blocking") {
  const std::string folder = fresh_folder("fifo");
  const std::string fifo = folder + "/fifo";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  // Opening a FIFO without a writer blocked forever.
  const std::string message = "'" + fifo + "' is not a regular file";
  CHECK_THROWS_WITH_AS(read_file(fifo), doctest::Contains(message.c_str()), std::runtime_error);
  CHECK_THROWS_WITH_AS(read_file("/dev/zero"), doctest::Contains("is not a regular file"),
                       std::runtime_error);
}
