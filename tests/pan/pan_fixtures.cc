#include "tests/pan/pan_fixtures.h"

#include <cstdlib>

#include "absl/strings/str_cat.h"

namespace mailroom::pan::testing {

std::string FreshTestDir() {
  const char* tmp = std::getenv("TEST_TMPDIR");
  const ::testing::TestInfo* info = ::testing::UnitTest::GetInstance()->current_test_info();
  const std::string dir =
      absl::StrCat(tmp ? tmp : "/tmp", "/", info->test_suite_name(), "-", info->name());
  EXPECT_EQ(std::system(absl::StrCat("rm -rf '", dir, "' && mkdir -p '", dir, "'").c_str()), 0);
  return dir;
}

google::protobuf::Timestamp Ts(absl::Time time) {
  google::protobuf::Timestamp out;
  out.set_seconds(absl::ToUnixSeconds(time));
  out.set_nanos(
      static_cast<int32_t>(absl::ToInt64Nanoseconds(time - absl::FromUnixSeconds(out.seconds()))));
  return out;
}

google::protobuf::Duration Dur(absl::Duration duration) {
  google::protobuf::Duration out;
  out.set_seconds(absl::ToInt64Seconds(duration));
  return out;
}

v1::GuestAccount Guest(const std::string& id, absl::Time expire) {
  v1::GuestAccount g;
  g.set_id(id);
  g.set_username(absl::StrCat(id, "-user"));
  g.mutable_email()->set_address(absl::StrCat(id, "@example.test"));
  g.set_first_name("Ada");
  g.set_last_name("Lovelace");
  g.set_portal_id("Lobby portal");
  *g.mutable_expire_time() = Ts(expire);
  return g;
}

v1::UserAccount User(const std::string& id, absl::Time expire, v1::UserKind kind) {
  v1::UserAccount u;
  u.set_id(id);
  u.set_kind(kind);
  u.set_username(absl::StrCat(id, "-user"));
  u.mutable_email()->set_address(absl::StrCat(id, "@example.test"));
  u.set_first_name("Grace");
  u.set_last_name("Hopper");
  if (expire != absl::InfinitePast()) *u.mutable_password_expire_time() = Ts(expire);
  return u;
}

v1::ReminderSettings SettingsWithLeads(std::vector<int> guest_days, std::vector<int> user_days) {
  v1::ReminderSettings s;
  for (int d : guest_days) *s.add_guest_expiry_lead_times() = Dur(absl::Hours(24 * d));
  for (int d : user_days) *s.add_password_expiry_lead_times() = Dur(absl::Hours(24 * d));
  s.mutable_from()->set_address("no-reply@example.test");
  s.mutable_from()->set_display_name("Network Access");
  return s;
}

}  // namespace mailroom::pan::testing
