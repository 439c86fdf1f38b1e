#include "common/base/atomic_file.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace mailroom {
namespace {

std::string Read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream content;
  content << in.rdbuf();
  return content.str();
}

mode_t ModeOf(const std::string& path) {
  struct stat st;
  EXPECT_EQ(stat(path.c_str(), &st), 0);
  return st.st_mode & 07777;
}

class AtomicFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* base = std::getenv("TEST_TMPDIR");
    std::string templ = absl::StrCat(base != nullptr ? base : "/tmp", "/atomic.XXXXXX");
    ASSERT_NE(mkdtemp(templ.data()), nullptr);
    dir_ = templ;
  }
  std::string dir_;
};

TEST_F(AtomicFileTest, CreatesAndReplacesWithTheGivenMode) {
  const std::string path = dir_ + "/state.bin";
  ASSERT_TRUE(WriteFileAtomically(path, std::string("one\0two", 7)).ok());
  EXPECT_EQ(Read(path), std::string("one\0two", 7));
  EXPECT_EQ(ModeOf(path), 0600u);
  ASSERT_TRUE(WriteFileAtomically(path, "second", 0640).ok());
  EXPECT_EQ(Read(path), "second");
  EXPECT_EQ(ModeOf(path), 0640u);
  ASSERT_TRUE(WriteFileAtomically(path, "").ok());
  EXPECT_EQ(Read(path), "");
  EXPECT_NE(access((path + ".tmp").c_str(), F_OK), 0);  // no temporary left behind
}

TEST_F(AtomicFileTest, StaleTemporaryDoesNotLeakItsMode) {
  const std::string path = dir_ + "/secret";
  const std::string stale = path + ".tmp";
  ASSERT_TRUE(WriteFileAtomically(stale, "junk", 0666).ok());
  ASSERT_EQ(chmod(stale.c_str(), 0666), 0);
  ASSERT_TRUE(WriteFileAtomically(path, "s3cret").ok());
  EXPECT_EQ(Read(path), "s3cret");
  EXPECT_EQ(ModeOf(path), 0600u);
}

TEST_F(AtomicFileTest, FailureNamesThePathAndKeepsTheOldContent) {
  const std::string missing = dir_ + "/no/such/dir/file";
  absl::Status status = WriteFileAtomically(missing, "x");
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(status.message().find(missing), std::string::npos) << status;

  // A directory in the way of the rename.
  const std::string path = dir_ + "/taken";
  ASSERT_EQ(mkdir(path.c_str(), 0700), 0);
  ASSERT_EQ(mkdir((path + "/inner").c_str(), 0700), 0);
  status = WriteFileAtomically(path, "x");
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(status.message().find("cannot replace " + path), std::string::npos) << status;
  EXPECT_NE(access((path + ".tmp").c_str(), F_OK), 0);
}

TEST_F(AtomicFileTest, RelativePathUsesTheCurrentDirectory) {
  ASSERT_EQ(chdir(dir_.c_str()), 0);
  ASSERT_TRUE(WriteFileAtomically("relative", "here").ok());
  EXPECT_EQ(Read(dir_ + "/relative"), "here");
}

}  // namespace
}  // namespace mailroom
