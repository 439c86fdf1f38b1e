// Bad input at every Reminders RPC is INVALID_ARGUMENT whose message names the field: empty
// required fields, CR/LF, invalid addresses, oversized and malformed UTF-8 text, bad enums and
// timestamps. (That nothing is stored is checked in reminders_test.)
#include "pan/request_validation.h"

#include "absl/time/clock.h"
#include "common/rpc/status_grpc.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/pan/pan_fixtures.h"

namespace mailroom::pan {
namespace {

using ::mailroom::pan::testing::Guest;
using ::mailroom::pan::testing::SettingsWithLeads;
using ::mailroom::pan::testing::User;
using ::testing::HasSubstr;
using ::testing::StartsWith;

const absl::Time kExpire = absl::FromUnixSeconds(1'900'000'000);

// The message of an INVALID_ARGUMENT (fails the test for any other code).
template <typename Request>
std::string Invalid(const Request& request) {
  const absl::Status status = ValidateRequest(request);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  if (!status.ok()) {
    EXPECT_EQ(ReasonOf(status), "INVALID_FIELD");
  }
  return std::string(status.message());
}

v1::UpsertGuestAccountRequest GuestRequest() {
  v1::UpsertGuestAccountRequest request;
  *request.mutable_account() = Guest("g1", kExpire);
  return request;
}

TEST(RequestValidationTest, AValidGuestAndUserPass) {
  EXPECT_TRUE(ValidateRequest(GuestRequest()).ok());
  v1::UpsertGuestAccountRequest chinese = GuestRequest();
  chinese.mutable_account()->set_first_name("小明");
  chinese.mutable_account()->set_last_name("王");
  chinese.mutable_account()->mutable_email()->set_display_name("王小明");
  EXPECT_TRUE(ValidateRequest(chinese).ok());
  v1::UpsertUserAccountRequest user;
  *user.mutable_account() = User("u1", absl::InfinitePast(), v1::USER_KIND_ADMIN);
  EXPECT_TRUE(ValidateRequest(user).ok());  // no password expiry: allowed, no reminders
}

TEST(RequestValidationTest, GuestFieldsAreNamed) {
  v1::UpsertGuestAccountRequest r;
  EXPECT_EQ(Invalid(r), "account: is required");

  r = GuestRequest();
  r.mutable_account()->clear_id();
  EXPECT_EQ(Invalid(r), "account.id: is required");
  r = GuestRequest();
  r.mutable_account()->set_id(std::string(129, 'x'));
  EXPECT_EQ(Invalid(r), "account.id: exceeds 128 characters");
  r = GuestRequest();
  r.mutable_account()->set_id(std::string(128, 'x'));
  EXPECT_TRUE(ValidateRequest(r).ok());
  // Characters, not bytes: 128 Chinese characters are 384 bytes and fine.
  std::string han;
  for (int i = 0; i < 128; ++i) han += "王";
  r.mutable_account()->set_id(han);
  EXPECT_TRUE(ValidateRequest(r).ok());

  r = GuestRequest();
  r.mutable_account()->set_username("");
  EXPECT_EQ(Invalid(r), "account.username: is required");
  r = GuestRequest();
  r.mutable_account()->set_username(std::string(257, 'u'));
  EXPECT_EQ(Invalid(r), "account.username: exceeds 256 characters");

  r = GuestRequest();
  r.mutable_account()->set_first_name("Ada\r\nBcc: victim@example.test");
  EXPECT_THAT(Invalid(r), StartsWith("account.first_name: contains CR or LF"));
  r = GuestRequest();
  r.mutable_account()->set_last_name("Love\xC0\xAFlace");
  EXPECT_THAT(Invalid(r), StartsWith("account.last_name: not valid UTF-8"));
  r = GuestRequest();
  r.mutable_account()->set_portal_id(std::string("lobby\x01", 6));
  EXPECT_THAT(Invalid(r), StartsWith("account.portal_id: contains a control character"));

  r = GuestRequest();
  r.mutable_account()->mutable_email()->set_address("not-an-address");
  EXPECT_THAT(Invalid(r), StartsWith("account.email.address: "));
  r = GuestRequest();
  r.mutable_account()->mutable_email()->set_address("guest@example.test\r\nRCPT TO:<x@y.z>");
  EXPECT_THAT(Invalid(r), StartsWith("account.email.address: "));
  r = GuestRequest();
  r.mutable_account()->clear_email();
  EXPECT_EQ(Invalid(r), "account.email.address: is required");
  r = GuestRequest();
  r.mutable_account()->mutable_email()->set_display_name("Ada\nLovelace");
  EXPECT_THAT(Invalid(r), StartsWith("account.email.display_name: contains CR or LF"));

  r = GuestRequest();
  r.mutable_account()->clear_expire_time();
  EXPECT_EQ(Invalid(r), "account.expire_time: is required");
  r = GuestRequest();
  r.mutable_account()->mutable_expire_time()->set_nanos(-1);
  EXPECT_THAT(Invalid(r), StartsWith("account.expire_time: is not a valid timestamp"));
}

TEST(RequestValidationTest, EveryViolationIsReportedFirstOneFirst) {
  v1::UpsertGuestAccountRequest r = GuestRequest();
  r.mutable_account()->clear_id();
  r.mutable_account()->mutable_email()->set_address("nope");
  const std::string message = Invalid(r);
  EXPECT_THAT(message, StartsWith("account.id: is required; "));
  EXPECT_THAT(message, HasSubstr("account.email.address: "));
}

TEST(RequestValidationTest, UserFieldsAreNamed) {
  v1::UpsertUserAccountRequest r;
  *r.mutable_account() = User("u1", kExpire);
  r.mutable_account()->set_kind(v1::USER_KIND_UNSPECIFIED);
  EXPECT_THAT(Invalid(r), StartsWith("account.kind: is required"));
  r.mutable_account()->set_kind(static_cast<v1::UserKind>(42));
  EXPECT_THAT(Invalid(r), StartsWith("account.kind: unknown value 42"));
  *r.mutable_account() = User("u1", kExpire);
  r.mutable_account()->mutable_password_expire_time()->set_seconds(253402300800);
  EXPECT_THAT(Invalid(r), StartsWith("account.password_expire_time: is not a valid timestamp"));
  *r.mutable_account() = User("u1", kExpire);
  r.mutable_account()->mutable_email()->set_address("user@-bad-.example");
  EXPECT_THAT(Invalid(r), StartsWith("account.email.address: "));
}

TEST(RequestValidationTest, DeletesNeedAnId) {
  EXPECT_EQ(Invalid(v1::DeleteGuestAccountRequest()), "id: is required");
  v1::DeleteUserAccountRequest d;
  d.set_id("u\n1");
  EXPECT_THAT(Invalid(d), StartsWith("id: contains CR or LF"));
}

TEST(RequestValidationTest, ListFiltersAreChecked) {
  v1::ListAccountsRequest accounts;
  accounts.add_kinds(v1::ACCOUNT_KIND_UNSPECIFIED);
  accounts.mutable_page()->set_page_size(-1);
  const std::string message = Invalid(accounts);
  EXPECT_THAT(message, StartsWith("kinds[0]: invalid account kind 0"));
  EXPECT_THAT(message, HasSubstr("page.page_size: must not be negative"));

  v1::ListPlannedRemindersRequest planned;
  planned.set_account_id("g1");
  EXPECT_EQ(Invalid(planned), "account_kind: is required when account_id is set");
  planned.set_account_kind(v1::ACCOUNT_KIND_GUEST);
  EXPECT_TRUE(ValidateRequest(planned).ok());
  planned.add_states(static_cast<v1::ReminderState>(9));
  EXPECT_EQ(Invalid(planned), "states[0]: invalid reminder state 9");
}

TEST(RequestValidationTest, SettingsAreCheckedWithTheirPath) {
  v1::SetReminderSettingsRequest r;
  EXPECT_EQ(Invalid(r), "settings: is required");
  *r.mutable_settings() = SettingsWithLeads({3}, {});
  EXPECT_TRUE(ValidateRequest(r).ok());
  r.mutable_settings()->mutable_guest_expiry_template()->set_subject("{{username}");
  r.mutable_settings()->mutable_guest_expiry_template()->set_text_body("{{pasword}}");
  const std::string message = Invalid(r);
  EXPECT_THAT(message, HasSubstr("settings.guest_expiry_template.subject: unclosed"));
  EXPECT_THAT(
      message,
      HasSubstr("settings.guest_expiry_template.text_body: unknown variable \"{{pasword}}\""));
}

TEST(RequestValidationTest, NotificationStatusNeedsAnId) {
  EXPECT_EQ(Invalid(v1::GetNotificationStatusRequest()), "notification_id: is required");
}

}  // namespace
}  // namespace mailroom::pan
