// A reminder rendered into the notification the outbox queues, read back with the
// independent MIME reader: From (configured, else the broker's mailbox), the account's Chinese
// name intact in To and in the body, the expiry in the settings' time zone, days left, HTML
// escaping, an admin's template, and the idempotency key and fingerprint of the reminder.
#include "pan/reminder_mail.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "pan/reminder_plan.h"
#include "tests/pan/pan_fixtures.h"
#include "tests/testing/mime_parse.h"

namespace mailroom::pan {
namespace {

namespace mt = ::mailroom::testing;
using ::mailroom::pan::testing::Guest;
using ::mailroom::pan::testing::SettingsWithLeads;
using ::mailroom::pan::testing::Ts;
using ::mailroom::pan::testing::User;
using ::mailroom::pan::v1::Account;
using ::mailroom::pan::v1::ReminderSettings;
using ::testing::HasSubstr;
using ::testing::Not;

const absl::Time kNow = absl::FromUnixSeconds(1'800'000'000);  // 2027-01-15 08:00 UTC
constexpr absl::Duration kDay = absl::Hours(24);

PlannedReminder ReminderFor(const Account& account, absl::Duration lead) {
  AccountPlanInput input;
  if (account.has_guest()) {
    input.space = AccountSpace::kGuest;
    input.account_id = account.guest().id();
    input.account_kind = v1::ACCOUNT_KIND_GUEST;
    input.expire_time = account.guest().expire_time();
    input.recipient = account.guest().email();
  } else {
    input.space = AccountSpace::kUser;
    input.account_id = account.user().id();
    input.account_kind = v1::ACCOUNT_KIND_ADMIN_USER;
    input.expire_time = account.user().password_expire_time();
    input.recipient = account.user().email();
  }
  input.leads = {lead};
  return PlanReminders(input, {}, kNow).writes.at(0);
}

Account ChineseGuest() {
  Account a;
  *a.mutable_guest() = Guest("g-zh", kNow + 3 * kDay);
  a.mutable_guest()->set_first_name("小明");
  a.mutable_guest()->set_last_name("王");
  a.mutable_guest()->set_username("xiaoming");
  return a;
}

struct Parsed {
  NewNotification notification;
  mt::MimeEntity message;
  std::string text;
  std::string html;
  std::string subject;
  std::vector<mt::ParsedMailbox> from;
  std::vector<mt::ParsedMailbox> to;
};

Parsed Build(const PlannedReminder& reminder, const Account& account,
             const ReminderSettings& settings, const ReminderMailOptions& options = {}) {
  Parsed p;
  absl::StatusOr<NewNotification> n =
      BuildReminderNotification(reminder, account, settings, kNow, "pan1.01TEST@mailroom", options);
  EXPECT_TRUE(n.ok()) << n.status();
  if (!n.ok()) return p;
  p.notification = *n;
  absl::StatusOr<mt::MimeEntity> message = mt::ParseMime(n->message);
  EXPECT_TRUE(message.ok()) << message.status();
  if (!message.ok()) return p;
  p.message = *message;
  p.subject = mt::DecodeHeaderText(message->Header("Subject")).value_or("?");
  p.from = mt::ParseAddressList(message->Header("From")).value_or(std::vector<mt::ParsedMailbox>{});
  p.to = mt::ParseAddressList(message->Header("To")).value_or(std::vector<mt::ParsedMailbox>{});
  for (const mt::MimeEntity& part : message->parts) {
    if (part.content_type == "text/plain") p.text = part.body;
    if (part.content_type == "text/html") p.html = part.body;
  }
  return p;
}

TEST(PersonDisplayNameTest, WesternOrderWithSpaceCjkFamilyNameFirst) {
  EXPECT_EQ(PersonDisplayName("Ada", "Lovelace"), "Ada Lovelace");
  EXPECT_EQ(PersonDisplayName("小明", "王"), "王小明");
  EXPECT_EQ(PersonDisplayName("さくら", "山田"), "山田さくら");
  EXPECT_EQ(PersonDisplayName("Ming", "王"), "Ming 王");
  EXPECT_EQ(PersonDisplayName("", "王"), "王");
  EXPECT_EQ(PersonDisplayName("Ada", ""), "Ada");
  EXPECT_EQ(PersonDisplayName("", ""), "");
}

TEST(ReminderMailTest, GuestWarningKeepsTheChineseNameAndSaysWhenAndHowLong) {
  const Account account = ChineseGuest();
  const PlannedReminder reminder = ReminderFor(account, 3 * kDay);
  const Parsed p = Build(reminder, account, SettingsWithLeads({3}, {}));
  EXPECT_EQ(p.notification.kind, mailroom::common::v1::NOTIFICATION_KIND_GUEST_EXPIRY_WARNING);
  ASSERT_EQ(p.to.size(), 1u);
  EXPECT_EQ(p.to[0].display_name, "王小明");
  EXPECT_EQ(p.to[0].address, "g-zh@example.test");
  ASSERT_EQ(p.from.size(), 1u);
  EXPECT_EQ(p.from[0].address, "no-reply@example.test");
  EXPECT_EQ(p.from[0].display_name, "Network Access");
  EXPECT_EQ(p.subject, "Your guest account expires on 2027-01-18 08:00");
  EXPECT_EQ(p.notification.subject, p.subject);
  EXPECT_THAT(p.text, HasSubstr("Hello 王小明,"));
  EXPECT_THAT(p.text, HasSubstr("\"xiaoming\" expires on 2027-01-18 08:00, in 3 day(s)"));
  EXPECT_THAT(p.html, HasSubstr("Hello 王小明,"));
  EXPECT_EQ(p.message.Header("Auto-Submitted"), "auto-generated");
  EXPECT_EQ(p.message.Header("X-Mailroom-Reminder"), reminder.id());
  EXPECT_EQ(p.message.Header("Message-ID"), "<pan1.01TEST@mailroom>");
  EXPECT_EQ(p.notification.message_id, "pan1.01TEST@mailroom");
  ASSERT_EQ(p.notification.recipients.size(), 1u);
  EXPECT_EQ(p.notification.recipients[0].address().display_name(), "王小明");
}

TEST(ReminderMailTest, IdempotencyKeyAndFingerprintComeFromTheReminderOnly) {
  const Account account = ChineseGuest();
  const PlannedReminder reminder = ReminderFor(account, 3 * kDay);
  const Parsed a = Build(reminder, account, SettingsWithLeads({3}, {}));
  // Another rendering (other settings, a later time) of the same reminder: same key and
  // fingerprint, so the outbox recognises it as the notification already queued.
  ReminderSettings other = SettingsWithLeads({3}, {});
  other.set_time_zone("Asia/Taipei");
  const Parsed b = Build(reminder, account, other);
  EXPECT_EQ(a.notification.idempotency_key, ReminderIdempotencyKey(reminder.id()));
  EXPECT_EQ(a.notification.idempotency_key, b.notification.idempotency_key);
  EXPECT_EQ(a.notification.request_fingerprint, b.notification.request_fingerprint);
  EXPECT_NE(a.notification.message, b.notification.message);
  EXPECT_NE(a.notification.request_fingerprint,
            ReminderFingerprint(ReminderFor(account, 2 * kDay)));
}

TEST(ReminderMailTest, PasswordReminderInTheSettingsTimeZone) {
  Account account;
  *account.mutable_user() = User("u1", kNow + 7 * kDay - absl::Hours(2), v1::USER_KIND_ADMIN);
  ReminderSettings settings = SettingsWithLeads({}, {7});
  settings.set_time_zone("Asia/Taipei");
  const Parsed p = Build(ReminderFor(account, 7 * kDay), account, settings);
  EXPECT_EQ(p.notification.kind, mailroom::common::v1::NOTIFICATION_KIND_PASSWORD_EXPIRY_REMINDER);
  EXPECT_EQ(p.subject, "Your password expires on 2027-01-22 14:00");  // 06:00 UTC + 8 h
  EXPECT_THAT(p.text, HasSubstr("Hello Grace Hopper,"));
  EXPECT_THAT(p.text, HasSubstr("in 7 day(s)"));  // 6 days 22 hours, rounded up
}

TEST(ReminderMailTest, FromFallsBackToTheBrokersMailboxAndIsRequired) {
  const Account account = ChineseGuest();
  const PlannedReminder reminder = ReminderFor(account, 3 * kDay);
  ReminderSettings settings = SettingsWithLeads({3}, {});
  settings.clear_from();
  ReminderMailOptions options;
  options.default_from = "mailbox@example.test";
  const Parsed p = Build(reminder, account, settings, options);
  ASSERT_EQ(p.from.size(), 1u);
  EXPECT_EQ(p.from[0].address, "mailbox@example.test");
  absl::StatusOr<NewNotification> none =
      BuildReminderNotification(reminder, account, settings, kNow, "m1@mailroom", {});
  EXPECT_EQ(none.status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(ReminderMailTest, AdminTemplateValuesAreEscapedInHtmlOnly) {
  Account account = ChineseGuest();
  account.mutable_guest()->set_username("<script>alert(1)</script>");
  account.mutable_guest()->set_portal_id("Lobby & Café");
  ReminderSettings settings = SettingsWithLeads({3}, {});
  v1::ReminderTemplate* t = settings.mutable_guest_expiry_template();
  t->set_subject("{{first_name}}: {{days_left}} days left on {{portal}}");
  t->set_text_body("user {{username}} <{{email}}>");
  t->set_html_body("<p>user {{username}} on {{portal}}</p>");
  const Parsed p = Build(ReminderFor(account, 3 * kDay), account, settings);
  EXPECT_EQ(p.subject, "小明: 3 days left on Lobby & Café");
  EXPECT_EQ(p.text, "user <script>alert(1)</script> <g-zh@example.test>\r\n");
  EXPECT_THAT(p.html, HasSubstr("user &lt;script&gt;alert(1)&lt;/script&gt; on Lobby &amp; Café"));
  EXPECT_THAT(p.html, Not(HasSubstr("<script>")));
}

TEST(ReminderMailTest, TheAccountsOwnDisplayNameWins) {
  Account account = ChineseGuest();
  account.mutable_guest()->mutable_email()->set_display_name("Xiaoming Wang");
  const Parsed p = Build(ReminderFor(account, 3 * kDay), account, SettingsWithLeads({3}, {}));
  ASSERT_EQ(p.to.size(), 1u);
  EXPECT_EQ(p.to[0].display_name, "Xiaoming Wang");
}

TEST(ReminderMailTest, TooLargeForTheNodeIsInvalidArgument) {
  const Account account = ChineseGuest();
  ReminderSettings settings = SettingsWithLeads({3}, {});
  settings.mutable_guest_expiry_template()->set_subject("s");
  settings.mutable_guest_expiry_template()->set_text_body(std::string(200 * 1024, 'x'));
  ReminderMailOptions options;
  options.max_message_bytes = 64 * 1024;
  absl::StatusOr<NewNotification> n = BuildReminderNotification(
      ReminderFor(account, 3 * kDay), account, settings, kNow, "m1@mailroom", options);
  EXPECT_EQ(n.status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace mailroom::pan
