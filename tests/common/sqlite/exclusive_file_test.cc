// ExclusiveFile: one owner per file, in this process (refused before any descriptor of the
// file is opened) and across processes (flock); a created file is private; the lock goes with
// its owner.
#include "common/sqlite/exclusive_file.h"

#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mailroom::sqlite {
namespace {

using ::testing::HasSubstr;

std::string FreshPath() {
  const ::testing::TestInfo* info = ::testing::UnitTest::GetInstance()->current_test_info();
  const std::string dir = absl::StrCat(std::getenv("TEST_TMPDIR"), "/lock-", info->name());
  EXPECT_EQ(std::system(absl::StrCat("rm -rf '", dir, "' && mkdir -p '", dir, "'").c_str()), 0);
  return dir + "/store.db";
}

TEST(ExclusiveFileTest, OneOwnerPerFileInThisProcess) {
  const std::string path = FreshPath();
  absl::StatusOr<std::unique_ptr<ExclusiveFile>> first = ExclusiveFile::Acquire(path, "test");
  ASSERT_TRUE(first.ok()) << first.status();
  struct stat info;
  ASSERT_EQ(stat(path.c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0600);
  absl::StatusOr<std::unique_ptr<ExclusiveFile>> second = ExclusiveFile::Acquire(path, "test");
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(second.status().message(),
            absl::StrCat("test: ", path, " is already open in this process"));
  first->reset();
  EXPECT_TRUE(ExclusiveFile::Acquire(path, "test").ok());
}

TEST(ExclusiveFileTest, AFileLockedByAnotherProcessIsRefusedWithTheHint) {
  const std::string path = FreshPath();
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    const int fd = open(path.c_str(), O_RDWR | O_CREAT, 0600);
    if (fd < 0 || flock(fd, LOCK_EX) != 0) _exit(1);
    (void)!write(ready[1], "x", 1);
    sleep(30);  // killed by the parent
    _exit(0);
  }
  char byte;
  ASSERT_EQ(read(ready[0], &byte, 1), 1);
  absl::StatusOr<std::unique_ptr<ExclusiveFile>> refused =
      ExclusiveFile::Acquire(path, "pan registry", " (one PAN per data directory)");
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(refused.status().message()),
              HasSubstr("is in use by another process (one PAN per data directory)"));
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
  // The lock died with the process.
  EXPECT_TRUE(ExclusiveFile::Acquire(path, "pan registry").ok());
}

TEST(ExclusiveFileTest, AnUncreatableFileIsUnavailable) {
  absl::StatusOr<std::unique_ptr<ExclusiveFile>> file =
      ExclusiveFile::Acquire("/nonexistent-dir/x/store.db", "test");
  EXPECT_EQ(file.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(file.status().message()),
              HasSubstr("test: cannot open /nonexistent-dir/x/store.db: "));
}

}  // namespace
}  // namespace mailroom::sqlite
