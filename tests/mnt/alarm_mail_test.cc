// The alarm and summary emails: they render into valid MIME (read back with an independent
// parser), put the text first with the diagnosis' title and fix, keep Chinese text intact,
// and the summary states the count and the window.
#include "mnt/alarm_mail.h"

#include "absl/strings/str_cat.h"
#include "common/base/diagnosis.h"
#include "common/mail/mime_message.h"
#include "mnt/alarm_types.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/mime_parse.h"

namespace mailroom::mnt {
namespace {

namespace cv1 = ::mailroom::common::v1;
namespace mv1 = ::mailroom::mnt::v1;
using ::mailroom::testing::DecodeHeaderText;
using ::mailroom::testing::MimeEntity;
using ::mailroom::testing::ParseMime;
using ::testing::HasSubstr;
using ::testing::Not;

const absl::Time kNow = absl::FromUnixSeconds(1'800'000'000);

mv1::AlarmSettings Settings() {
  mv1::AlarmSettings settings;
  settings.set_include_system_alarms_in_emails(true);
  settings.mutable_sender()->set_address("no-reply@example.test");
  settings.mutable_sender()->set_display_name("mailroom 警报");
  settings.add_admin_recipients()->set_address("noc@example.test");
  settings.add_admin_recipients()->set_address("oncall@example.test");
  return settings;
}

mv1::Alarm Alarm() {
  mv1::Alarm alarm;
  alarm.set_id("12");
  alarm.set_type(mv1::ALARM_TYPE_TOKEN_ACQUISITION_FAILED);
  alarm.set_severity(mv1::ALARM_SEVERITY_CRITICAL);
  alarm.set_source_node("broker");
  alarm.set_source_role(cv1::ROLE_BROKER);
  alarm.set_dedup_key("token/broker");
  alarm.set_text("令牌获取失败: the token endpoint refused the secret");
  *alarm.mutable_diagnosis() =
      MakeDiagnosis(cv1::FAILURE_CAUSE_INVALID_CLIENT_SECRET, "{\"error\":\"invalid_client\"}");
  alarm.mutable_diagnosis()->add_codes("AADSTS7000215");
  alarm.mutable_first_occur_time()->set_seconds(absl::ToUnixSeconds(kNow));
  alarm.mutable_last_occur_time()->set_seconds(absl::ToUnixSeconds(kNow));
  alarm.set_occurrence_count(1);
  return alarm;
}

MimeEntity Render(const MailContent& content) {
  absl::StatusOr<std::string> message = BuildMimeMessage(content);
  EXPECT_TRUE(message.ok()) << message.status();
  absl::StatusOr<MimeEntity> parsed = ParseMime(message.value_or(""));
  EXPECT_TRUE(parsed.ok()) << parsed.status();
  return parsed.value_or(MimeEntity());
}

TEST(AlarmMailTest, AlarmEmailHasTextDiagnosisAndDetails) {
  const mv1::AlarmSettings settings = Settings();
  const MailContent content =
      RenderAlarmMail(Alarm(), absl::Minutes(15), {&settings, "mnt1", "a.1@mailroom", kNow});
  EXPECT_EQ(content.to.size(), 2u);
  const MimeEntity message = Render(content);
  EXPECT_EQ(*DecodeHeaderText(message.Header("Subject")),
            "[mailroom] CRITICAL alarm on broker: Access token unavailable");
  EXPECT_THAT(*DecodeHeaderText(message.Header("From")), HasSubstr("mailroom 警报"));
  EXPECT_EQ(message.Header("X-Mailroom-Alarm-Id"), "12");
  const std::string& body = message.body;
  EXPECT_EQ(body.rfind("令牌获取失败", 0), 0u) << body;  // the text comes first
  EXPECT_THAT(body, HasSubstr("Invalid client secret"));
  EXPECT_THAT(body, HasSubstr(MakeDiagnosis(cv1::FAILURE_CAUSE_INVALID_CLIENT_SECRET).fix()));
  EXPECT_THAT(body, HasSubstr("AADSTS7000215"));
  EXPECT_THAT(body, HasSubstr("{\"error\":\"invalid_client\"}"));
  EXPECT_THAT(body, HasSubstr("Node:          broker (BROKER)"));
  EXPECT_THAT(body, HasSubstr("next 15m"));
  EXPECT_THAT(body, HasSubstr("mailroomctl alarm clear 12"));
}

TEST(AlarmMailTest, WithoutDiagnosisTheTypeGuidanceIsUsed) {
  const mv1::AlarmSettings settings = Settings();
  mv1::Alarm alarm = Alarm();
  alarm.clear_diagnosis();
  alarm.set_type(mv1::ALARM_TYPE_CLIENT_SECRET_EXPIRY);
  const MimeEntity message = Render(
      RenderAlarmMail(alarm, absl::ZeroDuration(), {&settings, "mnt1", "a.2@mailroom", kNow}));
  EXPECT_THAT(message.body, HasSubstr("What to do: Create a new client secret"));
  EXPECT_THAT(message.body, Not(HasSubstr("are counted")));  // no window: nothing suppressed
}

TEST(AlarmMailTest, TheWholeTextIsAsDocumented) {
  const mv1::AlarmSettings settings = Settings();
  mv1::Alarm alarm = Alarm();
  alarm.clear_diagnosis();
  alarm.set_type(mv1::ALARM_TYPE_CLIENT_SECRET_EXPIRY);
  alarm.set_text("Secret {{expires}} soon & <now>");  // values are never parsed or escaped
  const MailContent content =
      RenderAlarmMail(alarm, absl::Hours(1), {&settings, "mnt1", "a.3@mailroom", kNow});
  EXPECT_EQ(content.subject,
            "[mailroom] CRITICAL alarm on broker: SMTP OAuth Client Secret expiry");
  EXPECT_EQ(content.text_body,
            absl::StrCat("Secret {{expires}} soon & <now>\n"
                         "\n"
                         "What to do: ",
                         AlarmTypeGuidance(mv1::ALARM_TYPE_CLIENT_SECRET_EXPIRY),
                         "\n"
                         "\n"
                         "Alarm:         SMTP OAuth Client Secret expiry\n"
                         "Severity:      CRITICAL\n"
                         "Node:          broker (BROKER)\n"
                         "First seen:    2027-01-15 08:00:00 UTC\n"
                         "Last seen:     2027-01-15 08:00:00 UTC\n"
                         "Occurrences:   1\n"
                         "Alarm id:      12\n"
                         "Dedup key:     token/broker\n"
                         "\n"
                         "Further occurrences of this alarm in the next 1h are counted, not "
                         "emailed one by one; one summary email will give their number at the "
                         "end of that time.\n"
                         "\n"
                         "-- \n"
                         "Sent by the mailroom MnT node mnt1 because \"Include system alarms in "
                         "emails\" is on in Alarm Settings.\n"
                         "List or clear alarms: mailroomctl alarm list / mailroomctl alarm clear "
                         "12\n"));
  EXPECT_TRUE(content.html_body.empty());
}

TEST(AlarmMailTest, GenericAlarmsAreNamedByTheirTextCutOnACharacterBoundary) {
  const mv1::AlarmSettings settings = Settings();
  mv1::Alarm alarm = Alarm();
  alarm.set_type(mv1::ALARM_TYPE_GENERIC);
  alarm.set_severity(mv1::ALARM_SEVERITY_WARNING);
  alarm.set_text("Disk almost full");
  MimeEntity message = Render(
      RenderAlarmMail(alarm, absl::ZeroDuration(), {&settings, "mnt1", "g.1@mailroom", kNow}));
  EXPECT_EQ(*DecodeHeaderText(message.Header("Subject")),
            "[mailroom] WARNING alarm on broker: Disk almost full");
  std::string long_text = "xy";
  for (int i = 0; i < 60; ++i) long_text += "磁";  // 3 bytes each: byte 100 is mid-character
  alarm.set_text(long_text);
  message = Render(
      RenderAlarmMail(alarm, absl::ZeroDuration(), {&settings, "mnt1", "g.2@mailroom", kNow}));
  std::string expected = "xy";
  for (int i = 0; i < 32; ++i) expected += "磁";
  EXPECT_EQ(*DecodeHeaderText(message.Header("Subject")),
            absl::StrCat("[mailroom] WARNING alarm on broker: ", expected, "..."));
}

TEST(AlarmMailTest, SummaryStatesTheCountAndTheWindow) {
  const mv1::AlarmSettings settings = Settings();
  mv1::Alarm alarm = Alarm();
  alarm.set_occurrence_count(50);
  const MimeEntity message = Render(RenderSummaryMail(alarm, 49, kNow, kNow + absl::Seconds(5),
                                                      {&settings, "mnt1", "s.1@mailroom", kNow}));
  EXPECT_EQ(*DecodeHeaderText(message.Header("Subject")),
            "[mailroom] Summary: Access token unavailable (broker) repeated 49 times");
  EXPECT_THAT(message.body, HasSubstr("occurred 49 times more between 2027-01-15 08:00:00 UTC "
                                      "and 2027-01-15 08:00:05 UTC"));
  EXPECT_THAT(message.body, HasSubstr("Occurrences:   50"));
  EXPECT_THAT(message.body, HasSubstr("Invalid client secret"));
}

}  // namespace
}  // namespace mailroom::mnt
