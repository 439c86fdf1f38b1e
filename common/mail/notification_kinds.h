// Provides the one table of what each NotificationKind is: the role that sends it, its send
// priority class (common/mail/send_priority.h, README "Priorities") and the purpose the broker's
// mailbox pool routes it by (common/mail/mail_purpose.h, README "Mailbox pool"). PriorityOf,
// PurposeOf and the PSN's IsPsnNotificationKind read it; a kind added to the proto gets its row
// here. Stateless and thread-safe.
#ifndef MAILROOM_COMMON_MAIL_NOTIFICATION_KINDS_H_
#define MAILROOM_COMMON_MAIL_NOTIFICATION_KINDS_H_

#include "proto/mailroom/common/v1/common.pb.h"

namespace mailroom {

// What one NotificationKind is.
struct NotificationKindTraits {
  ::mailroom::common::v1::NotificationKind kind;
  // The role node that queues it.
  ::mailroom::common::v1::Role sender;
  ::mailroom::common::v1::SendPriority priority;
  ::mailroom::common::v1::MailPurpose purpose;
};

// The row of `kind`; for UNSPECIFIED and kinds without a row (added later):
// {kind, ROLE_UNSPECIFIED, SEND_PRIORITY_NORMAL, MAIL_PURPOSE_UNSPECIFIED}.
NotificationKindTraits TraitsOf(::mailroom::common::v1::NotificationKind kind);

}  // namespace mailroom

#endif  // MAILROOM_COMMON_MAIL_NOTIFICATION_KINDS_H_
