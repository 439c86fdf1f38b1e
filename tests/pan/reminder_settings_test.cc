// Reminder settings: the documented defaults, the seed from PanConfig, validation naming
// each bad field, and the etag.
#include "pan/reminder_settings.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/pan/pan_fixtures.h"

namespace mailroom::pan {
namespace {

using ::mailroom::pan::testing::Dur;
using ::mailroom::pan::testing::SettingsWithLeads;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr absl::Duration kDay = absl::Hours(24);

std::string Errors(const ReminderSettings& settings, bool require_from = true) {
  FieldErrors errors;
  CheckReminderSettings(&errors, "settings.", settings, require_from);
  return std::string(errors.ToStatus().message());
}

TEST(ReminderSettingsTest, DefaultsAreThreeAndOneDaysForGuestsAndFourteenSevenOneForPasswords) {
  const ReminderSettings d = DefaultReminderSettings();
  EXPECT_THAT(GuestLeadTimes(d), ElementsAre(3 * kDay, kDay));
  EXPECT_THAT(PasswordLeadTimes(d), ElementsAre(14 * kDay, 7 * kDay, kDay));
  EXPECT_TRUE(d.from().address().empty());
  EXPECT_FALSE(d.has_guest_expiry_template());
  EXPECT_EQ(SettingsTimeZone(d), absl::UTCTimeZone());
  EXPECT_THAT(Errors(d, /*require_from=*/false), IsEmpty());
}

TEST(ReminderSettingsTest, SeedTakesTheConfigAndDefaultsOnlyEmptyLists) {
  mailroom::config::v1::PanConfig config;
  EXPECT_EQ(SeedReminderSettings(config).DebugString(), DefaultReminderSettings().DebugString());
  *config.mutable_reminder_settings()->add_guest_expiry_lead_times() = Dur(2 * kDay);
  config.mutable_reminder_settings()->mutable_from()->set_address("no-reply@example.test");
  config.mutable_reminder_settings()->set_etag("ignored");
  const ReminderSettings seed = SeedReminderSettings(config);
  EXPECT_THAT(GuestLeadTimes(seed), ElementsAre(2 * kDay));
  EXPECT_THAT(PasswordLeadTimes(seed), ElementsAre(14 * kDay, 7 * kDay, kDay));
  EXPECT_EQ(seed.from().address(), "no-reply@example.test");
  EXPECT_TRUE(seed.etag().empty());
}

TEST(ReminderSettingsTest, LeadTimesAreBoundedDistinctAndWholeSeconds) {
  ReminderSettings s = SettingsWithLeads({3, 1}, {14});
  EXPECT_THAT(Errors(s), IsEmpty());
  *s.add_guest_expiry_lead_times() = Dur(3 * kDay);
  EXPECT_THAT(Errors(s), HasSubstr("settings.guest_expiry_lead_times[2]: duplicate lead time"));
  s = SettingsWithLeads({}, {366});
  EXPECT_THAT(Errors(s), HasSubstr("settings.password_expiry_lead_times[0]: must be between "
                                   "1 minute and 365 days"));
  s = SettingsWithLeads({}, {});
  *s.add_guest_expiry_lead_times() = Dur(absl::Seconds(59));
  EXPECT_THAT(Errors(s), HasSubstr("guest_expiry_lead_times[0]: must be between"));
  s = SettingsWithLeads({}, {});
  *s.add_guest_expiry_lead_times() = Dur(absl::Minutes(1));
  *s.add_guest_expiry_lead_times() = Dur(kMaxLeadTime);
  EXPECT_THAT(Errors(s), IsEmpty());
  s.mutable_guest_expiry_lead_times(0)->set_nanos(5);
  EXPECT_THAT(Errors(s), HasSubstr("guest_expiry_lead_times[0]: must be a whole number"));
  s = SettingsWithLeads({1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}, {});
  EXPECT_THAT(Errors(s), HasSubstr("settings.guest_expiry_lead_times: at most 10"));
}

TEST(ReminderSettingsTest, FromIsRequiredWithLeadTimesAndMustBeValid) {
  ReminderSettings s = SettingsWithLeads({3}, {});
  s.clear_from();
  EXPECT_THAT(Errors(s), HasSubstr("settings.from.address: is required when any lead time"));
  EXPECT_THAT(Errors(s, /*require_from=*/false), IsEmpty());
  // No lead times, no mail: no From needed.
  EXPECT_THAT(Errors(ReminderSettings()), IsEmpty());
  s = SettingsWithLeads({3}, {});
  s.mutable_from()->set_address("no-reply@example.test\r\nBcc: x@y.z");
  EXPECT_THAT(Errors(s), HasSubstr("settings.from.address:"));
  s = SettingsWithLeads({3}, {});
  s.mutable_from()->set_display_name("Evil\nBcc: x@y.z");
  EXPECT_THAT(Errors(s), HasSubstr("settings.from.display_name: contains CR or LF"));
}

TEST(ReminderSettingsTest, TemplatesAndTimeZoneAreChecked) {
  ReminderSettings s = SettingsWithLeads({3}, {7});
  s.mutable_password_expiry_template()->set_subject("{{portal}}");
  s.mutable_password_expiry_template()->set_text_body("x");
  s.set_time_zone("Mars/Olympus_Mons");
  const std::string errors = Errors(s);
  EXPECT_THAT(errors, HasSubstr("settings.password_expiry_template.subject: unknown variable"));
  EXPECT_THAT(errors, HasSubstr("settings.time_zone: unknown IANA time zone"));
  s.clear_password_expiry_template();
  s.set_time_zone("Asia/Taipei");
  EXPECT_THAT(Errors(s), IsEmpty());
  EXPECT_EQ(SettingsTimeZone(s).name(), "Asia/Taipei");
}

TEST(ReminderSettingsTest, EtagFollowsContentOnly) {
  ReminderSettings a = SettingsWithLeads({3, 1}, {14});
  const std::string etag = ReminderSettingsEtag(a);
  EXPECT_EQ(etag.size(), 32u);
  a.set_etag("anything");
  a.mutable_update_time()->set_seconds(5);
  EXPECT_EQ(ReminderSettingsEtag(a), etag);
  a.set_time_zone("Europe/Zurich");
  EXPECT_NE(ReminderSettingsEtag(a), etag);
}

}  // namespace
}  // namespace mailroom::pan
