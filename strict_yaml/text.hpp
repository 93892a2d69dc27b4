// Text that comes from users and from other people's files: UTF-8 and NUL checks, short
// printable quotes for messages, and reading a file a user named without trusting it.
//
// Every string qkv writes later (YAML configs, JSON metadata and metrics) must be UTF-8
// without NUL bytes: a bad byte found only when a checkpoint is written would lose the
// steps before it, and a NUL cuts a path short. Messages quote what they found, but a
// 4 MB key or a control byte must not become a 4 MB or unprintable message.
//
//   if (std::size_t at = first_invalid_utf8(name); at != std::string::npos) ...
//   std::string problem = text_problem(token);   // "" or "the byte 0xe9 at byte 3"
//   throw std::invalid_argument("unknown key '" + quote_for_message(key) + "'");
//   std::string yaml = read_text_file("configs/copy.yaml", 1 << 20, "config file");
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace qkv {

// The offset of the first byte that does not belong to well-formed UTF-8 (RFC 3629: no
// overlong forms, no UTF-16 surrogates, nothing above U+10FFFF), or std::string::npos.
std::size_t first_invalid_utf8(std::string_view text);

// What keeps `text` from being written as a string: "" if nothing, else
// "the byte 0xe9 at byte 3" (invalid UTF-8) or "a NUL byte at byte 4".
std::string text_problem(std::string_view text);

// `text` for a message: tab, newline, carriage return, other control bytes and bytes that
// are not UTF-8 escaped (\t, \n, \r, \xNN), and cut after `max_bytes` bytes of the original
// with "... (N bytes)" saying how long it was. Valid UTF-8 stays as it is.
std::string quote_for_message(std::string_view text, std::size_t max_bytes = 80);

// The whole file `path`, which must be a regular file (a FIFO, a device, a socket or a
// folder is refused without opening it for blocking reads) of at most `max_bytes` bytes.
// Throws std::runtime_error "<what> '<path>' ...": cannot be read (the system's reason),
// is not a regular file (and what it is), or is too large (its size and the limit).
std::string read_text_file(const std::string& path, std::size_t max_bytes, const std::string& what);

}  // namespace qkv
