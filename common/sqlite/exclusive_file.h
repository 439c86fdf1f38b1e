// Provides ExclusiveFile: one owner for a database file. Acquire creates the file if needed
// (mode 0600, its directory entry fsync'ed) and takes an exclusive flock(2) on it, so that a
// second owner of the same file, in this process or another, is refused (FAILED_PRECONDITION)
// instead of, say, re-queuing the first one's in-flight sends. The lock dies with the process.
//
// The files owned in this process are also registered by (device, inode), and a second
// Acquire of one fails before it opens any descriptor of the file: closing that descriptor
// would drop the POSIX locks the first owner's SQLite connections hold on it.
//
// Destroy the ExclusiveFile after the owner's connections. Thread-safe.
#ifndef MAILROOM_COMMON_SQLITE_EXCLUSIVE_FILE_H_
#define MAILROOM_COMMON_SQLITE_EXCLUSIVE_FILE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace mailroom::sqlite {

class ExclusiveFile {
 public:
  // `store` names the owner in messages ("outbox: <path> is in use by another process");
  // `in_use_hint` is appended to that message (e.g. " (one PAN per data directory)").
  // UNAVAILABLE when the file cannot be created, opened, locked or its directory synced.
  static absl::StatusOr<std::unique_ptr<ExclusiveFile>> Acquire(const std::string& path,
                                                                absl::string_view store,
                                                                absl::string_view in_use_hint = "");
  ~ExclusiveFile();
  ExclusiveFile(const ExclusiveFile&) = delete;
  ExclusiveFile& operator=(const ExclusiveFile&) = delete;

 private:
  ExclusiveFile(int fd, std::pair<uint64_t, uint64_t> id) : fd_(fd), id_(id) {}

  const int fd_;
  const std::pair<uint64_t, uint64_t> id_;  // (device, inode)
};

}  // namespace mailroom::sqlite

#endif  // MAILROOM_COMMON_SQLITE_EXCLUSIVE_FILE_H_
