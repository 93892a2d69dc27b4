// Atomic file replacement with POSIX calls: write a uniquely named temp file (from one
// string or streamed in pieces), fsync, rename, fsync the folder; the temp file is removed
// on every failure.
#include "io/atomic_file.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "io/untrusted_json.hpp"

namespace qkv::io {

namespace {

[[noreturn]] void fail(const std::string& what, const std::string& path) {
  throw std::runtime_error(what + " '" + path + "': " + std::strerror(errno));
}

// A NUL byte would silently cut the path the system sees (and the one in messages).
void check_path(const std::string& path) {
  if (path.find('\0') != std::string::npos)
    throw std::invalid_argument("path '" + detail::printable(path) + "' contains a NUL byte");
}

// Closes the descriptor on every path out (errors included).
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  int release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }

 private:
  int fd_;
};

// Removes the temp file on every path out, unless it was renamed into place.
class TempFile {
 public:
  explicit TempFile(std::string path) : path_(std::move(path)) {}
  ~TempFile() {
    if (!path_.empty()) ::unlink(path_.c_str());
  }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  const std::string& path() const { return path_; }
  void renamed() { path_.clear(); }

 private:
  std::string path_;
};

std::string parent_folder(const std::string& path) {
  std::size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

std::string file_name(const std::string& path) {
  std::size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

std::string temp_prefix(const std::string& path) { return path + ".tmp."; }

// The writer's pid in a temp file name's "<pid>.<n>" tail; 0 if it is not one of ours.
pid_t writer_pid(const std::string& tail) {
  const std::size_t dot = tail.find('.');
  if (dot == 0 || dot == std::string::npos || dot > 9) return 0;
  if (tail.find_first_not_of("0123456789") != dot) return 0;
  if (dot + 1 == tail.size() || tail.find_first_not_of("0123456789", dot + 1) != std::string::npos)
    return 0;
  return static_cast<pid_t>(std::stol(tail.substr(0, dot)));
}

// Best effort: a folder that cannot be listed only keeps its leftovers. A writer that
// exists (kill(pid, 0) succeeds, or fails with EPERM: another user's) keeps its file.
void remove_dead_writers_temps(const std::string& path) {
  const std::string prefix = file_name(temp_prefix(path));
  DIR* folder = ::opendir(parent_folder(path).c_str());
  if (folder == nullptr) return;
  while (const dirent* entry = ::readdir(folder)) {
    const std::string name = entry->d_name;
    if (name.compare(0, prefix.size(), prefix) != 0) continue;
    const pid_t pid = writer_pid(name.substr(prefix.size()));
    if (pid <= 0 || pid == ::getpid()) continue;
    if (::kill(pid, 0) == 0 || errno != ESRCH) continue;
    ::unlinkat(::dirfd(folder), name.c_str(), 0);
  }
  ::closedir(folder);
}

// Creates the temp file, open for writing. The name has this process's pid and a counter
// value it never used, so a file already there was left by a dead process that had the
// same pid: it is replaced (O_EXCL then never follows a link planted under that name).
int create_temp(const std::string& temp) {
  for (int attempt = 0; attempt < 2; ++attempt) {
    int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd >= 0 || errno != EEXIST) return fd;
    ::unlink(temp.c_str());
  }
  return -1;
}

void write_all(int fd, const char* data, std::size_t left, const std::string& temp) {
  while (left > 0) {
    ssize_t written = ::write(fd, data, left);
    if (written < 0) {
      if (errno == EINTR) continue;
      fail("cannot write", temp);
    }
    data += written;
    left -= static_cast<std::size_t>(written);
  }
}

// Gathers a streaming writer's small pieces into writes of up to kGathered bytes (a larger
// piece goes out as it is): a checkpoint's many small tensors (biases, norms) would
// otherwise be a system call each.
class GatheredWrites {
 public:
  GatheredWrites(int fd, const std::string& temp) : fd_(fd), temp_(temp) {
    pending_.reserve(kGathered);
  }
  void add(const char* data, std::size_t size) {
    if (pending_.size() + size > kGathered) flush();
    if (size >= kGathered) return write_all(fd_, data, size, temp_);
    pending_.append(data, size);
  }
  void flush() {
    write_all(fd_, pending_.data(), pending_.size(), temp_);
    pending_.clear();
  }

 private:
  static constexpr std::size_t kGathered = std::size_t{1} << 16;
  const int fd_;
  const std::string& temp_;
  std::string pending_;
};

}  // namespace

void write_file_atomically(const std::string& path, const std::string& bytes) {
  write_file_atomically(path, [&](const ByteSink& write) { write(bytes.data(), bytes.size()); });
}

void write_file_atomically(const std::string& path,
                           const std::function<void(const ByteSink&)>& produce) {
  check_path(path);
  remove_dead_writers_temps(path);
  static std::atomic<unsigned long> writes{0};
  const std::string temp_name =
      temp_prefix(path) + std::to_string(::getpid()) + "." + std::to_string(writes++);
  Fd fd(create_temp(temp_name));
  if (fd.get() < 0) fail("cannot create", temp_name);
  TempFile temp(temp_name);
  GatheredWrites out(fd.get(), temp.path());
  produce([&](const char* data, std::size_t size) { out.add(data, size); });
  out.flush();
  // The data must be on disk before the rename makes it visible under `path`.
  if (::fsync(fd.get()) != 0) fail("cannot fsync", temp.path());
  if (::close(fd.release()) != 0) fail("cannot close", temp.path());
  if (::rename(temp.path().c_str(), path.c_str()) != 0) fail("cannot rename to", path);
  temp.renamed();
  const std::string folder = parent_folder(path);
  Fd dir(::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dir.get() < 0) fail("cannot open folder", folder);
  if (::fsync(dir.get()) != 0) fail("cannot fsync folder", folder);
}

std::string read_file(const std::string& path) {
  check_path(path);
  // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer.
  Fd fd(::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
  if (fd.get() < 0) fail("cannot open", path);
  struct stat info {};
  if (::fstat(fd.get(), &info) != 0) fail("cannot stat", path);
  if (!S_ISREG(info.st_mode)) throw std::runtime_error("'" + path + "' is not a regular file");
  if (::fcntl(fd.get(), F_SETFL, 0) != 0) fail("cannot read", path);
  std::string bytes(static_cast<std::size_t>(info.st_size), '\0');
  std::size_t done = 0;
  while (done < bytes.size()) {
    ssize_t got = ::read(fd.get(), &bytes[done], bytes.size() - done);
    if (got < 0) {
      if (errno == EINTR) continue;
      fail("cannot read", path);
    }
    if (got == 0) break;  // the file shrank while we read it
    done += static_cast<std::size_t>(got);
  }
  bytes.resize(done);
  return bytes;
}

}  // namespace qkv::io
