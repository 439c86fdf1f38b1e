// Provides small helpers shared by the PSN unit tests: status matchers on the field an error
// names, and a per-test temporary directory under TEST_TMPDIR. Not thread-safe.
#ifndef MAILROOM_TESTS_PSN_TEST_UTIL_H_
#define MAILROOM_TESTS_PSN_TEST_UTIL_H_

#include <cstdlib>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace mailroom::psn::testing {

// Passes when `status` is INVALID_ARGUMENT and its message starts with "<field>: ".
inline ::testing::AssertionResult IsInvalidField(const absl::Status& status,
                                                 absl::string_view field) {
  if (status.code() != absl::StatusCode::kInvalidArgument) {
    return ::testing::AssertionFailure() << "expected INVALID_ARGUMENT on " << field << ", got "
                                         << status;
  }
  if (!absl::StartsWith(status.message(), absl::StrCat(field, ": "))) {
    return ::testing::AssertionFailure() << "expected the error to name " << field << ", got "
                                         << status.message();
  }
  return ::testing::AssertionSuccess();
}

// A fresh directory for the running test.
inline std::string TestDir() {
  const char* tmp = std::getenv("TEST_TMPDIR");
  const ::testing::TestInfo* info = ::testing::UnitTest::GetInstance()->current_test_info();
  const std::string dir = absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/",
                                       info->test_suite_name(), "-", info->name());
  EXPECT_EQ(std::system(absl::StrCat("rm -rf '", dir, "' && mkdir -p '", dir, "'").c_str()), 0);
  return dir;
}

}  // namespace mailroom::psn::testing

#endif  // MAILROOM_TESTS_PSN_TEST_UTIL_H_
