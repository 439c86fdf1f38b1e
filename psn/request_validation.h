// Provides the validation of every GuestNotifications request before anything is rendered or
// queued: required fields, lengths, CR/LF and control characters, UTF-8, addresses, timestamps
// and idempotency keys, with the rules of common/base/text_checks.h: every violation is
// collected into one INVALID_ARGUMENT, each naming the field as the client wrote it
// ("guests[2].email.address: ..."), the first offending field first. Template content is
// checked by ValidateTemplate (psn/template_text.h). Stateless and thread-safe.
#ifndef MAILROOM_PSN_REQUEST_VALIDATION_H_
#define MAILROOM_PSN_REQUEST_VALIDATION_H_

#include <cstddef>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "proto/mailroom/psn/v1/psn.pb.h"

namespace mailroom::psn {

// Guests per sponsor request (NotifySponsorCreatedAccounts, Resend).
inline constexpr size_t kMaxGuestsPerRequest = 500;

// What a mail about a guest needs from the Guest message.
struct GuestNeeds {
  bool email = true;
  bool password = true;
  bool validity = true;  // valid_from and valid_until
};

// `prefix` is the guest's path, e.g. "guest" or "guests[2]".
absl::Status ValidateGuest(const ::mailroom::psn::v1::Guest& guest, absl::string_view prefix,
                           const GuestNeeds& needs);

absl::Status ValidateRequest(const ::mailroom::psn::v1::NotifySelfRegistrationRequest& request);
absl::Status ValidateRequest(
    const ::mailroom::psn::v1::NotifySponsorCreatedAccountsRequest& request);
absl::Status ValidateRequest(const ::mailroom::psn::v1::ResendRequest& request);
absl::Status ValidateRequest(const ::mailroom::psn::v1::SendPasswordResetRequest& request);
absl::Status ValidateRequest(const ::mailroom::psn::v1::SendTestEmailRequest& request);
absl::Status ValidateRequest(const ::mailroom::psn::v1::GetNotificationStatusRequest& request);
absl::Status ValidateRequest(const ::mailroom::psn::v1::ListNotificationsRequest& request);
absl::Status ValidateRequest(const ::mailroom::psn::v1::GetTemplateRequest& request);
absl::Status ValidateRequest(const ::mailroom::psn::v1::ListTemplatesRequest& request);
absl::Status ValidateRequest(const ::mailroom::psn::v1::DeleteTemplateRequest& request);

// Whether `kind` is one the PSN queues (ListNotifications filters).
bool IsPsnNotificationKind(int kind);

}  // namespace mailroom::psn

#endif  // MAILROOM_PSN_REQUEST_VALIDATION_H_
