// Provides the one mapping from what a notification is (NotificationKind) to the purpose the
// broker's mailbox pool routes it by (MailPurpose, README "Mailbox pool"): alarms, guest
// credentials, sponsor mail, reminders, test mail. Role nodes ask the broker which mailbox
// carries a purpose (TokenBroker.ResolveMailRoute); the broker's routing rules live in
// pan/broker/mailbox_pool.h. Stateless and thread-safe.
#ifndef MAILROOM_COMMON_MAIL_MAIL_PURPOSE_H_
#define MAILROOM_COMMON_MAIL_MAIL_PURPOSE_H_

#include "absl/strings/string_view.h"
#include "proto/mailroom/common/v1/common.pb.h"

namespace mailroom {

using ::mailroom::common::v1::MailPurpose;

// ALARM, ALARM_SUMMARY → ALARMS; GUEST_SELF_REGISTRATION, GUEST_CREDENTIALS,
// GUEST_CREDENTIALS_RESEND, PASSWORD_RESET → GUEST_CREDENTIALS; SPONSOR_SUMMARY →
// SPONSOR_MAIL; GUEST_EXPIRY_WARNING, PASSWORD_EXPIRY_REMINDER → REMINDERS;
// PORTAL_TEST_EMAIL → TEST_MAIL. UNSPECIFIED and kinds added later → UNSPECIFIED (the
// default mailbox).
MailPurpose PurposeOf(::mailroom::common::v1::NotificationKind kind);

// "alarms", "guest credentials", "sponsor mail", "reminders", "test mail"; "unrouted mail"
// for UNSPECIFIED or an unknown value. For messages and mailroomctl.
absl::string_view PurposeName(MailPurpose purpose);

}  // namespace mailroom

#endif  // MAILROOM_COMMON_MAIL_MAIL_PURPOSE_H_
