#include "common/sqlite/exclusive_file.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <set>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"

namespace mailroom::sqlite {
namespace {

using FileId = std::pair<uint64_t, uint64_t>;

ABSL_CONST_INIT absl::Mutex open_files_mu(absl::kConstInit);
std::set<FileId>* open_files ABSL_GUARDED_BY(open_files_mu) = nullptr;

void Unregister(const FileId& id) {
  absl::MutexLock lock(&open_files_mu);
  open_files->erase(id);
}

}  // namespace

absl::StatusOr<std::unique_ptr<ExclusiveFile>> ExclusiveFile::Acquire(
    const std::string& path, absl::string_view store, absl::string_view in_use_hint) {
  absl::ReleasableMutexLock registry_lock(&open_files_mu);
  if (open_files == nullptr) open_files = new std::set<FileId>();
  struct stat st;
  if (::stat(path.c_str(), &st) == 0 && open_files->count({st.st_dev, st.st_ino}) > 0) {
    return absl::FailedPreconditionError(
        absl::StrCat(store, ": ", path, " is already open in this process"));
  }
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  const bool created = fd >= 0;
  if (!created && errno == EEXIST) fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0 || ::fstat(fd, &st) != 0) {
    const int error = errno;
    if (fd >= 0) ::close(fd);
    return absl::UnavailableError(
        absl::StrCat(store, ": cannot open ", path, ": ", std::strerror(error)));
  }
  const FileId id{st.st_dev, st.st_ino};
  open_files->insert(id);
  registry_lock.Release();
  // Owns fd and the registration until handed to the ExclusiveFile.
  std::unique_ptr<ExclusiveFile> file(new ExclusiveFile(fd, id));

  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) {
      return absl::FailedPreconditionError(
          absl::StrCat(store, ": ", path, " is in use by another process", in_use_hint));
    }
    return absl::UnavailableError(
        absl::StrCat(store, ": cannot lock ", path, ": ", std::strerror(errno)));
  }
  if (created) {
    // Make the new file's directory entry durable too (SQLite does it for its WAL).
    const size_t slash = path.rfind('/');
    const std::string dir = slash == std::string::npos ? "." : path.substr(0, slash + 1);
    const int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    const bool synced = dir_fd >= 0 && ::fsync(dir_fd) == 0;
    const int error = errno;
    if (dir_fd >= 0) ::close(dir_fd);
    if (!synced) {
      return absl::UnavailableError(
          absl::StrCat(store, ": cannot sync directory ", dir, ": ", std::strerror(error)));
    }
  }
  return file;
}

ExclusiveFile::~ExclusiveFile() {
  ::close(fd_);
  Unregister(id_);
}

}  // namespace mailroom::sqlite
