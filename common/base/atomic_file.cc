#include "common/base/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace mailroom {
namespace {

absl::Status IoError(absl::string_view what, const std::string& path) {
  return absl::UnavailableError(absl::StrCat(what, " ", path, ": ", std::strerror(errno)));
}

std::string DirectoryOf(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

bool WriteAll(int fd, absl::string_view data) {
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

}  // namespace

absl::Status WriteFileAtomically(const std::string& path, absl::string_view content,
                                 mode_t mode) {
  // Same directory as the target, so the rename cannot cross file systems. A fresh name,
  // created exclusively (mkostemp: O_CREAT | O_EXCL, mode 0600), so that neither a stale
  // temporary file nor a symbolic link planted under the name is written through.
  std::string temporary = absl::StrCat(path, ".tmp.XXXXXX");
  const int fd = mkostemp(temporary.data(), O_CLOEXEC);
  if (fd < 0) return IoError("cannot create", temporary);
  if (fchmod(fd, mode) != 0 || !WriteAll(fd, content) || fsync(fd) != 0) {
    const absl::Status status = IoError("cannot write", temporary);
    close(fd);
    unlink(temporary.c_str());
    return status;
  }
  if (close(fd) != 0) {
    const absl::Status status = IoError("cannot write", temporary);
    unlink(temporary.c_str());
    return status;
  }
  if (rename(temporary.c_str(), path.c_str()) != 0) {
    const absl::Status status = IoError("cannot replace", path);
    unlink(temporary.c_str());
    return status;
  }
  // The rename is durable only once the directory entry is.
  const std::string directory = DirectoryOf(path);
  const int dir_fd = open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd < 0) return IoError("cannot open directory", directory);
  const bool synced = fsync(dir_fd) == 0;
  const absl::Status status = synced ? absl::OkStatus() : IoError("cannot sync directory", directory);
  close(dir_fd);
  return status;
}

}  // namespace mailroom
