// Files read and written safely. Reads take regular files only (a FIFO or a device would block
// or never end), sized from fstat and bounded per kind. Writes are whole or not at all: a
// temporary beside the target, flushed to disk, renamed.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace torch_attn {

// The whole of the regular file at `path`, at most `max_bytes` long, or the reason it cannot be
// had (not a regular file, too large, unreadable), naming the path.
struct FileRead {
  std::string bytes;
  std::optional<std::string> error;
};
FileRead ReadRegularFile(const std::string& path, uint64_t max_bytes);

// The same, throwing E (DataError, CheckpointError) with the reason.
template <typename E>
std::string ReadRegularFileOr(const std::string& path, uint64_t max_bytes) {
  FileRead read = ReadRegularFile(path, max_bytes);
  if (read.error) throw E(*read.error);
  return std::move(read.bytes);
}

// What marks a temporary of WriteFileAtomic: `<path>.tmp-` and six random characters.
inline constexpr const char* kTempMarker = ".tmp-";

// Throws CheckpointError naming the path when it cannot write. The temporary is created
// exclusively under an unpredictable name (links are never followed), flushed, renamed over
// `path`, and the folder flushed after the rename.
void WriteFileAtomic(const std::string& path, const char* data, size_t size);

// Removes the temporaries a killed writer of `path` left behind (`<path>.tmp-XXXXXX`).
void RemoveStaleTemporaries(const std::string& path);

}  // namespace torch_attn
