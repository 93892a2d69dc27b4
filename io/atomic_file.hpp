// Replacing a file so that a crash or kill at any moment leaves either the old file or the
// new one, never a partial one.
//
//   write_file_atomically("run/last.safetensors", bytes);
//   write_file_atomically("run/last.safetensors", [&](const ByteSink& write) {
//     write(header.data(), header.size());   // a large file, piece by piece: it is never
//     write(values, values_bytes);           // one buffer in memory
//   });
//
// The bytes go to a temp file `<path>.tmp.<pid>.<n>` in the same folder (a rename is
// atomic only within one file system; the pid and a per-process counter make the name
// unique, so two writers never share one), which is fsync'ed, renamed over `path`, and
// then the folder is fsync'ed so the rename itself survives a power loss. On every
// failure (a full disk, a rename refused) the temp file is removed before the error is
// thrown, so a failed save does not keep the disk full. A writer that is killed cannot
// clean up: the next write to the same path removes the temp files of writers whose
// process no longer exists (pids are checked in this pid namespace only). Errors throw
// std::runtime_error naming the path and the system's reason; a path holding a NUL byte
// throws std::invalid_argument. An exception thrown by a streaming writer's `produce` is a
// failure like the others: the temp file is removed, the old file kept, and it propagates.
#pragma once

#include <cstddef>
#include <functional>
#include <string>

namespace qkv::io {

void write_file_atomically(const std::string& path, const std::string& bytes);

// Takes the next `size` bytes of the file at `data`; the pieces are the file in order.
using ByteSink = std::function<void(const char* data, std::size_t size)>;
// The file's bytes are what `produce` hands to the sink, in order; small pieces are
// gathered into larger writes.
void write_file_atomically(const std::string& path,
                           const std::function<void(const ByteSink&)>& produce);

// The whole file as bytes; throws std::runtime_error naming the path if it can't be read
// or is not a regular file (a FIFO or a device is refused without blocking on it).
std::string read_file(const std::string& path);

}  // namespace qkv::io
