// Replacing a file so that a crash or kill at any moment leaves either the old file or the
// new one, never a partial one.
//
//   write_file_atomically("run/last.safetensors", bytes);
//
// The bytes go to `<path>.tmp` in the same folder (a rename is atomic only within one
// file system), which is fsync'ed, renamed over `path`, and then the folder is fsync'ed so
// the rename itself survives a power loss. A temp file left by a killed writer is simply
// overwritten by the next write. Errors throw std::runtime_error naming the path and the
// system's reason.
#pragma once

#include <string>

namespace qkv::io {

void write_file_atomically(const std::string& path, const std::string& bytes);

// The whole file as bytes; throws std::runtime_error naming the path if it can't be read.
std::string read_file(const std::string& path);

}  // namespace qkv::io
