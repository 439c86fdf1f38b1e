#include "pan/reminder_settings.h"

#include <set>

#include "absl/strings/str_cat.h"
#include "common/mail/address_checks.h"
#include "common/base/proto_hash.h"
#include "pan/reminder_template.h"

namespace mailroom::pan {
namespace {

using ::google::protobuf::Duration;
using ::google::protobuf::RepeatedPtrField;

Duration Days(int days) {
  Duration d;
  d.set_seconds(int64_t{days} * 86400);
  return d;
}

absl::Duration ToDuration(const Duration& d) {
  return absl::Seconds(d.seconds()) + absl::Nanoseconds(d.nanos());
}

void CheckLeadTimes(FieldErrors* errors, const std::string& field,
                    const RepeatedPtrField<Duration>& leads) {
  if (leads.size() > kMaxLeadTimes) {
    errors->Add(field,
                absl::StrCat("at most ", kMaxLeadTimes, " lead times (has ", leads.size(), ")"));
    return;
  }
  std::set<int64_t> seen;
  for (int i = 0; i < leads.size(); ++i) {
    const std::string item = absl::StrCat(field, "[", i, "]");
    const Duration& d = leads.Get(i);
    if (d.nanos() != 0) {
      // Reminders are keyed on whole seconds; a fraction would only make two ids for one
      // intent.
      errors->Add(item, "must be a whole number of seconds");
      continue;
    }
    const absl::Duration lead = ToDuration(d);
    if (lead < kMinLeadTime || lead > kMaxLeadTime) {
      errors->Add(item, "must be between 1 minute and 365 days");
      continue;
    }
    if (!seen.insert(d.seconds()).second) {
      errors->Add(item, absl::StrCat("duplicate lead time ", absl::FormatDuration(lead)));
    }
  }
}

std::vector<absl::Duration> Leads(const RepeatedPtrField<Duration>& leads) {
  std::vector<absl::Duration> out;
  for (const Duration& d : leads) out.push_back(ToDuration(d));
  return out;
}

}  // namespace

ReminderSettings DefaultReminderSettings() {
  ReminderSettings settings;
  *settings.add_guest_expiry_lead_times() = Days(3);
  *settings.add_guest_expiry_lead_times() = Days(1);
  *settings.add_password_expiry_lead_times() = Days(14);
  *settings.add_password_expiry_lead_times() = Days(7);
  *settings.add_password_expiry_lead_times() = Days(1);
  return settings;
}

ReminderSettings SeedReminderSettings(const mailroom::config::v1::PanConfig& config) {
  if (!config.has_reminder_settings()) return DefaultReminderSettings();
  ReminderSettings settings = config.reminder_settings();
  const ReminderSettings defaults = DefaultReminderSettings();
  if (settings.guest_expiry_lead_times().empty()) {
    *settings.mutable_guest_expiry_lead_times() = defaults.guest_expiry_lead_times();
  }
  if (settings.password_expiry_lead_times().empty()) {
    *settings.mutable_password_expiry_lead_times() = defaults.password_expiry_lead_times();
  }
  settings.clear_etag();
  settings.clear_update_time();
  return settings;
}

void CheckReminderSettings(FieldErrors* errors, absl::string_view prefix,
                           const ReminderSettings& settings, bool require_from) {
  CheckLeadTimes(errors, absl::StrCat(prefix, "guest_expiry_lead_times"),
                 settings.guest_expiry_lead_times());
  CheckLeadTimes(errors, absl::StrCat(prefix, "password_expiry_lead_times"),
                 settings.password_expiry_lead_times());
  const bool any_lead =
      !settings.guest_expiry_lead_times().empty() || !settings.password_expiry_lead_times().empty();
  if (require_from && any_lead && settings.from().address().empty()) {
    errors->Add(absl::StrCat(prefix, "from.address"),
                "is required when any lead time is set (normally the broker's sending "
                "mailbox)");
  } else {
    CheckEmailAddress(errors, absl::StrCat(prefix, "from"), settings.from(), false);
  }
  if (settings.has_guest_expiry_template()) {
    CheckReminderTemplate(errors, absl::StrCat(prefix, "guest_expiry_template"),
                          settings.guest_expiry_template(), v1::REMINDER_KIND_GUEST_EXPIRY);
  }
  if (settings.has_password_expiry_template()) {
    CheckReminderTemplate(errors, absl::StrCat(prefix, "password_expiry_template"),
                          settings.password_expiry_template(), v1::REMINDER_KIND_PASSWORD_EXPIRY);
  }
  CheckTimeZone(errors, absl::StrCat(prefix, "time_zone"), settings.time_zone());
}

std::string ReminderSettingsEtag(const ReminderSettings& settings) {
  ReminderSettings content = settings;
  content.clear_etag();
  content.clear_update_time();
  return Sha256Hex(DeterministicBytes(content)).substr(0, 32);
}

std::vector<absl::Duration> GuestLeadTimes(const ReminderSettings& settings) {
  return Leads(settings.guest_expiry_lead_times());
}

std::vector<absl::Duration> PasswordLeadTimes(const ReminderSettings& settings) {
  return Leads(settings.password_expiry_lead_times());
}

absl::TimeZone SettingsTimeZone(const ReminderSettings& settings) {
  return TimeZoneOrUtc(settings.time_zone());
}

}  // namespace mailroom::pan
