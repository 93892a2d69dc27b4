// UTF-8 checks, message quotes and bounded reading of a named file (see text.hpp).
#include "strict_yaml/text.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>

namespace qkv {

namespace {

// The length of the well-formed UTF-8 sequence starting at text[i], or 0 if none does.
std::size_t sequence_length(std::string_view text, std::size_t i) {
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char lead = byte(i);
  if (lead < 0x80) return 1;
  std::size_t length = 0;
  unsigned char low = 0x80, high = 0xbf;  // the range of the second byte
  if (lead >= 0xc2 && lead <= 0xdf) {
    length = 2;
  } else if (lead >= 0xe0 && lead <= 0xef) {
    length = 3;
    if (lead == 0xe0) low = 0xa0;   // overlong below U+0800
    if (lead == 0xed) high = 0x9f;  // U+D800..DFFF: surrogates
  } else if (lead >= 0xf0 && lead <= 0xf4) {
    length = 4;
    if (lead == 0xf0) low = 0x90;   // overlong below U+10000
    if (lead == 0xf4) high = 0x8f;  // above U+10FFFF
  } else {
    return 0;  // a continuation byte, 0xc0/0xc1 (overlong) or 0xf5..0xff
  }
  if (i + length > text.size()) return 0;
  if (byte(i + 1) < low || byte(i + 1) > high) return 0;
  for (std::size_t k = 2; k < length; ++k)
    if (byte(i + k) < 0x80 || byte(i + k) > 0xbf) return 0;
  return length;
}

std::string hex_byte(unsigned char byte) {
  char buffer[8];
  std::snprintf(buffer, sizeof buffer, "\\x%02x", byte);
  return buffer;
}

const char* file_kind(mode_t mode) {
  if (S_ISDIR(mode)) return "a folder";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  return "not a file";
}

}  // namespace

std::size_t first_invalid_utf8(std::string_view text) {
  for (std::size_t i = 0; i < text.size();) {
    const std::size_t length = sequence_length(text, i);
    if (length == 0) return i;
    i += length;
  }
  return std::string::npos;
}

std::string text_problem(std::string_view text) {
  const std::size_t bad = first_invalid_utf8(text);
  const std::size_t nul = text.find('\0');
  if (nul != std::string::npos && (bad == std::string::npos || nul < bad))
    return "a NUL byte at byte " + std::to_string(nul);
  if (bad == std::string::npos) return "";
  return "the byte 0x" + hex_byte(static_cast<unsigned char>(text[bad])).substr(2) +
         " at byte " + std::to_string(bad);
}

std::string quote_for_message(std::string_view text, std::size_t max_bytes) {
  std::string out;
  const std::size_t end = std::min(text.size(), max_bytes);
  for (std::size_t i = 0; i < end;) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    const std::size_t length = sequence_length(text, i);
    if (c == '\t') {
      out += "\\t";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (length == 1 && (c < 0x20 || c == 0x7f)) {
      out += hex_byte(c);
    } else if (length > 1 && i + length <= end) {
      out.append(text.substr(i, length));
      i += length;
      continue;
    } else if (length == 1) {
      out += static_cast<char>(c);
    } else {
      out += hex_byte(c);  // not UTF-8, or a character cut by the limit
    }
    ++i;
  }
  if (text.size() > max_bytes) out += "... (" + std::to_string(text.size()) + " bytes)";
  return out;
}

std::string read_text_file(const std::string& path, std::size_t max_bytes, const std::string& what) {
  const std::string named = what + " '" + quote_for_message(path, 300) + "'";
  if (path.find('\0') != std::string::npos)
    throw std::runtime_error(named + ": the path contains a NUL byte");
  // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer.
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) throw std::runtime_error("cannot read " + named + ": " + std::strerror(errno));
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat info {};
  if (::fstat(fd, &info) != 0)
    throw std::runtime_error("cannot read " + named + ": " + std::strerror(errno));
  if (!S_ISREG(info.st_mode))
    throw std::runtime_error(named + " is not a regular file (" + file_kind(info.st_mode) + ")");
  if (static_cast<std::uint64_t>(info.st_size) > max_bytes)
    throw std::runtime_error(named + " is " + std::to_string(info.st_size) +
                             " bytes; the limit is " + std::to_string(max_bytes));
  std::string bytes(static_cast<std::size_t>(info.st_size), '\0');
  std::size_t done = 0;
  // One byte more than the limit allows, to notice a file that grew while it was read.
  while (done <= max_bytes) {
    if (done == bytes.size()) bytes.resize(std::min(bytes.size() + 4096, max_bytes + 1));
    const ssize_t got = ::read(fd, &bytes[done], bytes.size() - done);
    if (got < 0) {
      if (errno == EINTR) continue;
      throw std::runtime_error("cannot read " + named + ": " + std::strerror(errno));
    }
    if (got == 0) break;
    done += static_cast<std::size_t>(got);
  }
  if (done > max_bytes)
    throw std::runtime_error(named + " grew past the limit of " + std::to_string(max_bytes) +
                             " bytes while it was read");
  bytes.resize(done);
  return bytes;
}

}  // namespace qkv
