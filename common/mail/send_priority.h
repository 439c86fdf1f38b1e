// Provides the one mapping from what a notification is for (NotificationKind) to its send
// priority class (SendPriority), and the order of the classes, for the outbox (which mail of
// a node goes first) and the broker (which node's request gets a mailbox's free room).
// The rule, documented in README "Priorities": URGENT before NORMAL before BULK; within a
// node a message ranks by its queue time plus kPriorityAgingStep per class below URGENT, so
// no class waits forever behind newer mail of a higher one. Stateless and thread-safe.
#ifndef MAILROOM_COMMON_MAIL_SEND_PRIORITY_H_
#define MAILROOM_COMMON_MAIL_SEND_PRIORITY_H_

#include "absl/time/time.h"
#include "proto/mailroom/common/v1/common.pb.h"

namespace mailroom {

using ::mailroom::common::v1::SendPriority;

// A person waits for URGENT mail (a password reset, a guest's self-registration credentials,
// an alarm, a portal's test email); NORMAL is expected soon (sponsor-created credentials,
// resends, alarm summaries); BULK is scheduled or informational (sponsor summaries,
// expiry warnings and reminders). An unknown or unset kind is NORMAL.
SendPriority PriorityOf(::mailroom::common::v1::NotificationKind kind);

// UNSPECIFIED (a request from a node built before priorities) and unknown values → NORMAL.
SendPriority Normalized(SendPriority priority);

// 0 for URGENT, 1 for NORMAL, 2 for BULK: lower goes first.
int PriorityLevel(SendPriority priority);

// How much later a message is ranked in its node's outbox for each class below URGENT: a
// BULK message queued at t goes before URGENT mail queued after t + 2 steps.
inline constexpr absl::Duration kPriorityAgingStep = absl::Minutes(10);

}  // namespace mailroom

#endif  // MAILROOM_COMMON_MAIL_SEND_PRIORITY_H_
