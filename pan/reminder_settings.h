// Provides the rules of ReminderSettings (proto/mailroom/pan/v1/pan.proto): the documented
// defaults, the seed taken from the node's PanConfig, validation naming each bad field, the
// content etag, and typed access to lead times and the time zone. Stateless and thread-safe.
//
// Seeding: a node that has never saved settings starts from PanConfig.reminder_settings. A
// lead-time list left empty there takes its documented default (3 d and 1 d for guests;
// 14, 7 and 1 d for passwords), because in a config file "not written" and "empty" look the
// same and an operator who only sets `from` expects reminders. Through SetReminderSettings an
// empty list means what the API says: no reminders of that kind.
//
// From: SetReminderSettings requires `from` when any lead time is set (as the API documents).
// The seed may leave it empty; reminders then go out from the broker's sending mailbox.
#ifndef MAILROOM_PAN_REMINDER_SETTINGS_H_
#define MAILROOM_PAN_REMINDER_SETTINGS_H_

#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/base/text_checks.h"
#include "proto/mailroom/config/v1/config.pb.h"
#include "proto/mailroom/pan/v1/pan.pb.h"

namespace mailroom::pan {

using ::mailroom::pan::v1::ReminderSettings;

inline constexpr int kMaxLeadTimes = 10;
inline constexpr absl::Duration kMinLeadTime = absl::Minutes(1);
inline constexpr absl::Duration kMaxLeadTime = absl::Hours(24 * 365);

// The documented defaults: guest warnings 3 d and 1 d before, password reminders 14, 7 and
// 1 d before; no From (the broker's mailbox); built-in templates; UTC.
ReminderSettings DefaultReminderSettings();

// The settings a node without saved settings starts with (see the top of this file).
ReminderSettings SeedReminderSettings(const mailroom::config::v1::PanConfig& config);

// Checks `settings` (fields named "<prefix>guest_expiry_lead_times[1]", ...). With
// `require_from`, `from` is required when any lead time is set.
void CheckReminderSettings(FieldErrors* errors, absl::string_view prefix,
                           const ReminderSettings& settings, bool require_from);

// A hash of the content (etag and update_time excluded), stable across processes.
std::string ReminderSettingsEtag(const ReminderSettings& settings);

// Lead times of each kind, as durations (assumes checked settings).
std::vector<absl::Duration> GuestLeadTimes(const ReminderSettings& settings);
std::vector<absl::Duration> PasswordLeadTimes(const ReminderSettings& settings);

// The settings' time zone (UTC when empty or unknown; unknown zones are refused by the check).
absl::TimeZone SettingsTimeZone(const ReminderSettings& settings);

}  // namespace mailroom::pan

#endif  // MAILROOM_PAN_REMINDER_SETTINGS_H_
