// Provides the checks of every Reminders request (proto/mailroom/pan/v1/pan.proto) before
// anything is stored: INVALID_ARGUMENT whose message names each bad field with its path from
// the request root ("account.email.address: ...", "settings.guest_expiry_lead_times[1]: ..."),
// covering empty required fields, CR/LF and other control characters, invalid addresses,
// oversized and malformed UTF-8 text, bad enum values and timestamps, and unknown template
// variables, with the rules of common/base/text_checks.h (every violation collected, the
// first offending field first; reason INVALID_FIELD). Output-only fields are ignored.
// Stateless and thread-safe.
#ifndef MAILROOM_PAN_REQUEST_VALIDATION_H_
#define MAILROOM_PAN_REQUEST_VALIDATION_H_

#include "absl/status/status.h"
#include "proto/mailroom/pan/v1/pan.pb.h"

namespace mailroom::pan {

inline constexpr size_t kMaxAccountIdChars = 128;
inline constexpr size_t kMaxNameChars = 256;

absl::Status ValidateRequest(const v1::UpsertGuestAccountRequest& request);
absl::Status ValidateRequest(const v1::UpsertUserAccountRequest& request);
absl::Status ValidateRequest(const v1::DeleteGuestAccountRequest& request);
absl::Status ValidateRequest(const v1::DeleteUserAccountRequest& request);
absl::Status ValidateRequest(const v1::ListAccountsRequest& request);
absl::Status ValidateRequest(const v1::SetReminderSettingsRequest& request);
absl::Status ValidateRequest(const v1::ListPlannedRemindersRequest& request);
absl::Status ValidateRequest(const v1::GetNotificationStatusRequest& request);

}  // namespace mailroom::pan

#endif  // MAILROOM_PAN_REQUEST_VALIDATION_H_
