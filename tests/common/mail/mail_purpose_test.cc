// The one mapping from a notification's kind to the purpose the broker's mailbox pool routes
// it by (common/mail/mail_purpose.h).
#include "common/mail/mail_purpose.h"

#include "gtest/gtest.h"

namespace mailroom {
namespace {

namespace cv1 = ::mailroom::common::v1;

TEST(MailPurposeTest, EveryKindHasAPurpose) {
  EXPECT_EQ(PurposeOf(cv1::NOTIFICATION_KIND_ALARM), cv1::MAIL_PURPOSE_ALARMS);
  EXPECT_EQ(PurposeOf(cv1::NOTIFICATION_KIND_ALARM_SUMMARY), cv1::MAIL_PURPOSE_ALARMS);
  EXPECT_EQ(PurposeOf(cv1::NOTIFICATION_KIND_GUEST_SELF_REGISTRATION),
            cv1::MAIL_PURPOSE_GUEST_CREDENTIALS);
  EXPECT_EQ(PurposeOf(cv1::NOTIFICATION_KIND_GUEST_CREDENTIALS),
            cv1::MAIL_PURPOSE_GUEST_CREDENTIALS);
  EXPECT_EQ(PurposeOf(cv1::NOTIFICATION_KIND_GUEST_CREDENTIALS_RESEND),
            cv1::MAIL_PURPOSE_GUEST_CREDENTIALS);
  EXPECT_EQ(PurposeOf(cv1::NOTIFICATION_KIND_PASSWORD_RESET), cv1::MAIL_PURPOSE_GUEST_CREDENTIALS);
  EXPECT_EQ(PurposeOf(cv1::NOTIFICATION_KIND_SPONSOR_SUMMARY), cv1::MAIL_PURPOSE_SPONSOR_MAIL);
  EXPECT_EQ(PurposeOf(cv1::NOTIFICATION_KIND_GUEST_EXPIRY_WARNING), cv1::MAIL_PURPOSE_REMINDERS);
  EXPECT_EQ(PurposeOf(cv1::NOTIFICATION_KIND_PASSWORD_EXPIRY_REMINDER),
            cv1::MAIL_PURPOSE_REMINDERS);
  EXPECT_EQ(PurposeOf(cv1::NOTIFICATION_KIND_PORTAL_TEST_EMAIL), cv1::MAIL_PURPOSE_TEST_MAIL);
  EXPECT_EQ(PurposeOf(cv1::NOTIFICATION_KIND_UNSPECIFIED), cv1::MAIL_PURPOSE_UNSPECIFIED);
  // Every kind defined today maps to a purpose of its own.
  for (int kind = cv1::NotificationKind_MIN + 1; kind <= cv1::NotificationKind_MAX; ++kind) {
    if (!cv1::NotificationKind_IsValid(kind)) continue;
    EXPECT_NE(PurposeOf(static_cast<cv1::NotificationKind>(kind)), cv1::MAIL_PURPOSE_UNSPECIFIED)
        << cv1::NotificationKind_Name(kind);
  }
}

TEST(MailPurposeTest, NamesForMessages) {
  EXPECT_EQ(PurposeName(cv1::MAIL_PURPOSE_ALARMS), "alarms");
  EXPECT_EQ(PurposeName(cv1::MAIL_PURPOSE_GUEST_CREDENTIALS), "guest credentials");
  EXPECT_EQ(PurposeName(cv1::MAIL_PURPOSE_UNSPECIFIED), "unrouted mail");
}

}  // namespace
}  // namespace mailroom
