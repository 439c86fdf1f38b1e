// Provides the input checks of every Alarms RPC. Each returns OK or INVALID_ARGUMENT naming
// every offending field by its path from the request root, the first one first ("text:
// contains CR or LF (a line break)", "settings.admin_recipients[2].address: invalid domain
// ..."), so a caller can tell which input is wrong; the service checks before it stores or
// queues anything. The limits are the ones documented in proto/mailroom/mnt/v1/mnt.proto; the
// rules (characters, UTF-8, timestamps, identifiers) are common/base/text_checks.h's.
// Stateless and thread-safe.
#ifndef MAILROOM_MNT_ALARM_VALIDATION_H_
#define MAILROOM_MNT_ALARM_VALIDATION_H_

#include <cstddef>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "common/base/text_checks.h"
#include "proto/mailroom/mnt/v1/mnt.pb.h"

namespace mailroom::mnt {

inline constexpr size_t kMaxDedupKeyChars = 256;
inline constexpr size_t kMaxAlarmTextBytes = 4096;
inline constexpr size_t kMaxClearReasonBytes = 1024;
inline constexpr int kMaxAdminRecipients = 100;
inline constexpr int64_t kMaxSuppressionWindowSeconds = 7 * 24 * 3600;

// The request as RaiseAlarm receives it (source_node is checked against the certificate by
// the service, not here).
absl::Status ValidateRaiseAlarmRequest(const mailroom::mnt::v1::RaiseAlarmRequest& request);

// Alarm Settings; `prefix` is prepended to field names ("settings." for SetAlarmSettings,
// "mnt.alarm_settings." for the node config). Output-only fields are ignored.
absl::Status ValidateAlarmSettings(const mailroom::mnt::v1::AlarmSettings& settings,
                                   absl::string_view prefix);

absl::Status ValidateListAlarmsRequest(const mailroom::mnt::v1::ListAlarmsRequest& request);
absl::Status ValidateClearAlarmRequest(const mailroom::mnt::v1::ClearAlarmRequest& request);
absl::Status ValidateGetNotificationStatusRequest(
    const mailroom::mnt::v1::GetNotificationStatusRequest& request);

}  // namespace mailroom::mnt

#endif  // MAILROOM_MNT_ALARM_VALIDATION_H_
