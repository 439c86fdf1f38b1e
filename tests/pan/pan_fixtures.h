// Provides what the PAN service's unit tests share: a fresh directory under TEST_TMPDIR per
// test, accounts to register (with a Chinese-named guest among them), and status matchers.
// Not thread-safe.
#ifndef MAILROOM_TESTS_PAN_PAN_FIXTURES_H_
#define MAILROOM_TESTS_PAN_PAN_FIXTURES_H_

#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "proto/mailroom/pan/v1/pan.pb.h"

namespace mailroom::pan::testing {

#define MR_ASSERT_OK(expr)                                        \
  do {                                                            \
    const absl::Status mr_assert_ok_status = (expr);              \
    ASSERT_TRUE(mr_assert_ok_status.ok()) << mr_assert_ok_status; \
  } while (false)

// $TEST_TMPDIR/<suite>-<test>, empty.
std::string FreshTestDir();

google::protobuf::Timestamp Ts(absl::Time time);
google::protobuf::Duration Dur(absl::Duration duration);

// A guest account "<id>" with username "<id>-user", address "<id>@example.test".
v1::GuestAccount Guest(const std::string& id, absl::Time expire);
// A user of `kind` with a password expiring at `expire` (InfinitePast: no expiry).
v1::UserAccount User(const std::string& id, absl::Time expire,
                     v1::UserKind kind = v1::USER_KIND_INTERNAL);

// Settings with the given lead times (in days) and a From address.
v1::ReminderSettings SettingsWithLeads(std::vector<int> guest_days, std::vector<int> user_days);

}  // namespace mailroom::pan::testing

#endif  // MAILROOM_TESTS_PAN_PAN_FIXTURES_H_
