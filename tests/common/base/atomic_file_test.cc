#include "common/base/atomic_file.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <vector>

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

std::vector<std::string> Entries(const std::string& dir) {
  std::vector<std::string> names;
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return names;
  while (dirent* entry = readdir(d)) {
    const std::string name = entry->d_name;
    if (name != "." && name != "..") names.push_back(name);
  }
  closedir(d);
  std::sort(names.begin(), names.end());
  return names;
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
  EXPECT_EQ(Entries(dir_), std::vector<std::string>{"state.bin"});  // no temporary left
}

// L7: a symbolic link planted under the temporary name must not be written through.
TEST_F(AtomicFileTest, ALinkUnderTheTemporaryNameIsNotFollowed) {
  const std::string victim = dir_ + "/victim";
  ASSERT_TRUE(WriteFileAtomically(victim, "untouched").ok());
  const std::string path = dir_ + "/state.bin";
  ASSERT_EQ(symlink(victim.c_str(), (path + ".tmp").c_str()), 0);
  ASSERT_TRUE(WriteFileAtomically(path, "sealed state").ok());
  EXPECT_EQ(Read(victim), "untouched");
  EXPECT_EQ(Read(path), "sealed state");
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
  EXPECT_EQ(Entries(path), std::vector<std::string>{"inner"});
  EXPECT_EQ(Entries(dir_), std::vector<std::string>{"taken"});  // no temporary left
}

TEST_F(AtomicFileTest, RelativePathUsesTheCurrentDirectory) {
  ASSERT_EQ(chdir(dir_.c_str()), 0);
  ASSERT_TRUE(WriteFileAtomically("relative", "here").ok());
  EXPECT_EQ(Read(dir_ + "/relative"), "here");
}

}  // namespace
}  // namespace mailroom
