// The input checks of the Alarms RPCs: valid requests pass, and each bad field is named.
#include "mnt/alarm_validation.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mailroom::mnt {
namespace {

namespace mv1 = ::mailroom::mnt::v1;
using ::testing::StartsWith;

mv1::RaiseAlarmRequest Valid() {
  mv1::RaiseAlarmRequest request;
  request.set_type(mv1::ALARM_TYPE_CLIENT_SECRET_EXPIRY);
  request.set_source_node("broker");
  request.set_dedup_key("client-secret-expiry/app");
  request.set_text("Client secret of app 1234 expires in 7 days (2026-03-01). 密钥即将过期");
  request.set_idempotency_key("secret-expiry/1234/1700000000/7");
  request.mutable_diagnosis()->set_title("Invalid client secret");
  request.mutable_diagnosis()->set_fix("Paste the secret's Value.\nNot its ID.");
  request.mutable_diagnosis()->set_raw_reply("{\"error\":\"invalid_client\"}\n");
  request.mutable_diagnosis()->add_codes("AADSTS7000215");
  return request;
}

std::string Message(const absl::Status& status) { return std::string(status.message()); }

TEST(AlarmValidationTest, ValidRequestPasses) {
  EXPECT_TRUE(ValidateRaiseAlarmRequest(Valid()).ok()) << ValidateRaiseAlarmRequest(Valid());
}

TEST(AlarmValidationTest, LimitsAreInclusive) {
  mv1::RaiseAlarmRequest request = Valid();
  request.set_text(std::string(kMaxAlarmTextBytes, 'x'));
  request.set_idempotency_key(std::string(kMaxIdempotencyKeyChars, 'k'));
  // 256 characters of three bytes each: the limit is in characters, not bytes.
  std::string key;
  for (size_t i = 0; i < kMaxDedupKeyChars; ++i) key += "键";
  request.set_dedup_key(key);
  EXPECT_TRUE(ValidateRaiseAlarmRequest(request).ok()) << ValidateRaiseAlarmRequest(request);
  request.set_dedup_key(key + "k");
  EXPECT_THAT(Message(ValidateRaiseAlarmRequest(request)), StartsWith("dedup_key: exceeds 256"));
}

TEST(AlarmValidationTest, TabIsAllowedOtherControlsAreNot) {
  mv1::RaiseAlarmRequest request = Valid();
  request.set_text("column\tcolumn");
  EXPECT_TRUE(ValidateRaiseAlarmRequest(request).ok());
  request.set_text("bell\a");
  EXPECT_THAT(Message(ValidateRaiseAlarmRequest(request)),
              StartsWith("text: contains a control character"));
  request.set_text("line\nbreak");
  EXPECT_THAT(Message(ValidateRaiseAlarmRequest(request)), StartsWith("text: contains CR or LF"));
}

TEST(AlarmValidationTest, DiagnosisFields) {
  mv1::RaiseAlarmRequest request = Valid();
  request.mutable_diagnosis()->set_cause(static_cast<mailroom::common::v1::FailureCause>(1000));
  EXPECT_THAT(Message(ValidateRaiseAlarmRequest(request)), StartsWith("diagnosis.cause:"));
  request = Valid();
  request.mutable_diagnosis()->set_raw_reply(std::string(16385, 'r'));
  EXPECT_THAT(Message(ValidateRaiseAlarmRequest(request)), StartsWith("diagnosis.raw_reply:"));
  request = Valid();
  request.mutable_diagnosis()->set_endpoint("smtp://a\r\n");
  EXPECT_THAT(Message(ValidateRaiseAlarmRequest(request)), StartsWith("diagnosis.endpoint:"));
  // Multi-line fields take LF and CRLF (a server's reply), never a bare CR.
  request = Valid();
  request.mutable_diagnosis()->set_raw_reply("535 5.7.3 Authentication unsuccessful\r\n");
  EXPECT_TRUE(ValidateRaiseAlarmRequest(request).ok()) << ValidateRaiseAlarmRequest(request);
  request.mutable_diagnosis()->set_fix("Paste the secret\rFORGED LINE");
  EXPECT_THAT(Message(ValidateRaiseAlarmRequest(request)),
              StartsWith("diagnosis.fix: contains CR not followed by LF"));
}

TEST(AlarmValidationTest, EveryBadFieldIsNamedFirstOneFirst) {
  mv1::RaiseAlarmRequest request = Valid();
  request.set_text("two\nlines");
  request.set_idempotency_key("has space");
  EXPECT_EQ(Message(ValidateRaiseAlarmRequest(request)),
            "text: contains CR or LF (a line break); "
            "idempotency_key: must be printable ASCII without spaces");
}

TEST(AlarmValidationTest, SettingsWithEmailsOffNeedNoSender) {
  mv1::AlarmSettings settings;
  EXPECT_TRUE(ValidateAlarmSettings(settings, "settings.").ok());
  settings.set_include_system_alarms_in_emails(true);
  EXPECT_THAT(Message(ValidateAlarmSettings(settings, "settings.")),
              StartsWith("settings.sender.address: required"));
  settings.mutable_sender()->set_address("no-reply@例え.test");  // IDN domain
  settings.mutable_sender()->set_display_name("警报 mailroom");
  EXPECT_TRUE(ValidateAlarmSettings(settings, "settings.").ok())
      << ValidateAlarmSettings(settings, "settings.");
  settings.mutable_suppression_window()->set_seconds(kMaxSuppressionWindowSeconds);
  EXPECT_TRUE(ValidateAlarmSettings(settings, "settings.").ok());
  settings.mutable_suppression_window()->set_nanos(1);
  EXPECT_THAT(Message(ValidateAlarmSettings(settings, "settings.")),
              StartsWith("settings.suppression_window:"));
}

TEST(AlarmValidationTest, ListClearAndStatusRequests) {
  mv1::ListAlarmsRequest list;
  list.mutable_page()->set_page_size(-1);
  EXPECT_THAT(Message(ValidateListAlarmsRequest(list)), StartsWith("page.page_size:"));
  list = mv1::ListAlarmsRequest();
  list.add_types(mv1::ALARM_TYPE_GENERIC);
  list.add_types(mv1::ALARM_TYPE_UNSPECIFIED);
  EXPECT_THAT(Message(ValidateListAlarmsRequest(list)), StartsWith("types[1]:"));
  list = mv1::ListAlarmsRequest();
  list.mutable_occur_after()->set_seconds(-62135596801);
  EXPECT_THAT(Message(ValidateListAlarmsRequest(list)), StartsWith("occur_after:"));

  mv1::ClearAlarmRequest clear;
  clear.set_id("7");
  clear.set_reason(std::string(kMaxClearReasonBytes + 1, 'r'));
  EXPECT_THAT(Message(ValidateClearAlarmRequest(clear)), StartsWith("reason: exceeds"));

  mv1::GetNotificationStatusRequest status;
  status.set_notification_id("mnt1/01H");
  status.set_idempotency_key("k");
  EXPECT_THAT(Message(ValidateGetNotificationStatusRequest(status)),
              StartsWith("notification_id: exactly one"));
  status.clear_notification_id();
  EXPECT_TRUE(ValidateGetNotificationStatusRequest(status).ok());
}

}  // namespace
}  // namespace mailroom::mnt
