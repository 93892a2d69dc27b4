// Atomic file replacement with POSIX calls: write a temp file, fsync, rename, fsync folder.
#include "io/atomic_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace qkv::io {

namespace {

[[noreturn]] void fail(const std::string& what, const std::string& path) {
  throw std::runtime_error(what + " '" + path + "': " + std::strerror(errno));
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

std::string parent_folder(const std::string& path) {
  std::size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

}  // namespace

void write_file_atomically(const std::string& path, const std::string& bytes) {
  const std::string temp = path + ".tmp";
  {
    Fd fd(::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (fd.get() < 0) fail("cannot create", temp);
    const char* data = bytes.data();
    std::size_t left = bytes.size();
    while (left > 0) {
      ssize_t written = ::write(fd.get(), data, left);
      if (written < 0) {
        if (errno == EINTR) continue;
        fail("cannot write", temp);
      }
      data += written;
      left -= static_cast<std::size_t>(written);
    }
    // The data must be on disk before the rename makes it visible under `path`.
    if (::fsync(fd.get()) != 0) fail("cannot fsync", temp);
    if (::close(fd.release()) != 0) fail("cannot close", temp);
  }
  if (::rename(temp.c_str(), path.c_str()) != 0) fail("cannot rename to", path);
  const std::string folder = parent_folder(path);
  Fd dir(::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dir.get() < 0) fail("cannot open folder", folder);
  if (::fsync(dir.get()) != 0) fail("cannot fsync folder", folder);
}

std::string read_file(const std::string& path) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) fail("cannot open", path);
  struct stat info {};
  if (::fstat(fd.get(), &info) != 0) fail("cannot stat", path);
  if (!S_ISREG(info.st_mode)) throw std::runtime_error("'" + path + "' is not a regular file");
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
