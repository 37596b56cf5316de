#include "common/files.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "common/errors.h"

namespace torch_attn {

namespace {

// The folder holding `path`: "." for a bare name, "/" for a file at the root.
std::string FolderOf(const std::string& path) {
  const auto slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

}  // namespace

FileRead ReadRegularFile(const std::string& path, uint64_t max_bytes) {
  FileRead out;
  // O_NONBLOCK: opening a FIFO must not wait for a writer; regular files ignore the flag.
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) {
    out.error = "cannot open " + path + " (" + std::strerror(errno) + ")";
    return out;
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    out.error = path + ": cannot stat (" + std::strerror(errno) + ")";
  } else if (!S_ISREG(st.st_mode)) {
    out.error = path + " is not a regular file (" +
                (S_ISDIR(st.st_mode) ? "a folder" : S_ISFIFO(st.st_mode) ? "a FIFO" : S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) ? "a device" : "a special file") +
                "): only regular files are read";
  } else if (static_cast<uint64_t>(st.st_size) > max_bytes) {
    out.error = path + " is " + std::to_string(st.st_size) + " bytes, more than the " + std::to_string(max_bytes) + " bytes allowed for it";
  } else {
    // Read what fstat said and no more (a file that grows meanwhile is cut at that size).
    out.bytes.resize(static_cast<size_t>(st.st_size));
    size_t done = 0;
    while (done < out.bytes.size()) {
      const ssize_t n = ::read(fd, out.bytes.data() + done, out.bytes.size() - done);
      if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      if (n < 0) {
        out.error = path + ": read failed (" + std::strerror(errno) + ")";
        break;
      }
      if (n == 0) {  // it shrank meanwhile
        out.bytes.resize(done);
        break;
      }
      done += static_cast<size_t>(n);
    }
  }
  ::close(fd);
  if (out.error) out.bytes.clear();
  return out;
}

void WriteFileAtomic(const std::string& path, const char* data, size_t size) {
  // A fresh, unpredictable name created exclusively beside the target (mkostemp: O_CREAT |
  // O_EXCL, so a planted file or symlink is never opened or followed), then renamed over it.
  std::string temp = path + kTempMarker + "XXXXXX";
  const int fd = ::mkostemp(temp.data(), O_CLOEXEC);
  if (fd < 0) throw CheckpointError("cannot write " + path + ": " + std::strerror(errno));
  auto fail = [&](int err) {
    ::close(fd);
    ::unlink(temp.c_str());
    throw CheckpointError("cannot write " + path + ": " + std::strerror(err));
  };
  if (::fchmod(fd, 0644) != 0) fail(errno);
  size_t done = 0;
  while (done < size) {
    const ssize_t n = ::write(fd, data + done, size - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) fail(n < 0 ? errno : EIO);
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) fail(errno);
  if (::close(fd) != 0) {
    const int err = errno;
    ::unlink(temp.c_str());
    throw CheckpointError("cannot write " + path + ": " + std::strerror(err));
  }
  if (std::rename(temp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(temp.c_str());
    throw CheckpointError("cannot write " + path + ": " + std::strerror(err));
  }
  // The rename itself is durable only once the folder is flushed too.
  const int dfd = ::open(FolderOf(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

void RemoveStaleTemporaries(const std::string& path) {
  const auto slash = path.rfind('/');
  const std::string prefix = (slash == std::string::npos ? path : path.substr(slash + 1)) + kTempMarker;
  DIR* d = ::opendir(FolderOf(path).c_str());
  if (d == nullptr) return;
  while (const dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    if (name.size() == prefix.size() + 6 && name.compare(0, prefix.size(), prefix) == 0) ::unlinkat(::dirfd(d), name.c_str(), 0);
  }
  ::closedir(d);
}

}  // namespace torch_attn
