// RunLock: flock on RUN_DIR/.lock with the holder's pid in it (see run_lock.hpp).
#include "train/run_lock.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace qkv::train {

namespace {

// The pid the holder wrote, as text ("" if it has not written it yet).
std::string holder_pid(int fd) {
  char buffer[32] = {};
  const ssize_t got = ::pread(fd, buffer, sizeof buffer - 1, 0);
  std::string text(buffer, got > 0 ? static_cast<std::size_t>(got) : 0);
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return text.find_first_not_of("0123456789") == std::string::npos ? text : "";
}

}  // namespace

RunLock::RunLock(const std::string& folder) {
  const std::string path = folder + "/.lock";
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0)
    throw std::runtime_error("cannot create the run folder's lock '" + path +
                             "': " + std::strerror(errno));
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    const int error = errno;
    const std::string pid = holder_pid(fd_);
    ::close(fd_);
    fd_ = -1;
    if (error != EWOULDBLOCK)
      throw std::runtime_error("cannot lock '" + path + "': " + std::strerror(error));
    throw std::runtime_error("run folder '" + folder + "' is in use by another qkv (" +
                             (pid.empty() ? std::string("pid unknown") : "pid " + pid) +
                             ", holding " + path +
                             "): wait for it to finish, or train into another folder with --out");
  }
  const std::string text = std::to_string(::getpid()) + "\n";
  // Best effort: the pid only names the holder in the message above.
  if (::ftruncate(fd_, 0) == 0) {
    const ssize_t written = ::pwrite(fd_, text.data(), text.size(), 0);
    (void)written;
  }
}

RunLock::~RunLock() {
  if (fd_ >= 0) ::close(fd_);  // releases the flock
}

}  // namespace qkv::train
