// Provides the rendering of one due reminder into the notification the outbox queues: the
// template of its kind (the admin's, or the built-in English one) filled with the account's
// values, the From (the configured address, else the broker's sending mailbox), the account's
// address with its display name (Chinese names kept as UTF-8 and encoded per RFC 2047 by
// common/mail/mime_message.h), and the outbox idempotency key and fingerprint derived from the
// reminder, so that rendering the same reminder again after a crash names the notification
// already queued. Stateless and thread-safe.
#ifndef MAILROOM_PAN_REMINDER_MAIL_H_
#define MAILROOM_PAN_REMINDER_MAIL_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/mail/email_address.h"
#include "common/outbox/outbox.h"
#include "pan/reminder_template.h"
#include "proto/mailroom/pan/v1/pan.pb.h"

namespace mailroom::pan {

// A person's name for a greeting or a display name: "First Last", or, when both parts are
// written in CJK scripts, family name first without a space ("王小明"), as those names are
// written. Empty when both are empty.
std::string PersonDisplayName(absl::string_view first_name, absl::string_view last_name);

// The values of a reminder's template variables (see reminder_template.h). {{expire_time}}
// is "YYYY-MM-DD HH:MM" in the settings' time zone; {{days_left}} is the whole days left,
// rounded up (a reminder due 3 days before says 3 even when scanned a second late).
TemplateValues ReminderValues(const v1::PlannedReminder& reminder, const v1::Account& account,
                              const v1::ReminderSettings& settings, absl::Time now);

struct ReminderMailOptions {
  // The From when the settings name none (the broker's mailbox). Required then.
  std::string default_from;
  size_t max_message_bytes = 25 * 1024 * 1024;
};

// The notification for `reminder` of `account`, ready for Outbox::Enqueue, with
// `message_id` (from Outbox::NewMessageId) and the Date `now`. FAILED_PRECONDITION when no
// From is known yet; INVALID_ARGUMENT if the message cannot be built.
absl::StatusOr<NewNotification> BuildReminderNotification(const v1::PlannedReminder& reminder,
                                                          const v1::Account& account,
                                                          const v1::ReminderSettings& settings,
                                                          absl::Time now,
                                                          const std::string& message_id,
                                                          const ReminderMailOptions& options);

}  // namespace mailroom::pan

#endif  // MAILROOM_PAN_REMINDER_MAIL_H_
