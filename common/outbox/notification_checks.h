// Provides the outbox's checks of what it is asked to queue (NewNotification) and of its
// options' node name. Each failure is INVALID_ARGUMENT naming the field, prefixed with
// `prefix` ("notifications[2]." inside a batch): "<prefix><field>: <problem>".
//
// Stateless; thread-safe.
#ifndef MAILROOM_COMMON_OUTBOX_NOTIFICATION_CHECKS_H_
#define MAILROOM_COMMON_OUTBOX_NOTIFICATION_CHECKS_H_

#include <cstddef>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "common/outbox/outbox_types.h"

namespace mailroom {

inline constexpr size_t kMaxIdempotencyKeyLength = 256;

// Printable ASCII without spaces (0x21..0x7e), as idempotency keys, node names and the left
// part of Message-IDs must be.
bool IsPrintableAscii(absl::string_view s);

// Idempotency key (printable, at most kMaxIdempotencyKeyLength, with a fingerprint), kind,
// From and recipients (present, no CR or LF), subject (no CR or LF), Message-ID (printable,
// no angle brackets) and message (present).
absl::Status ValidateNotification(const NewNotification& n, absl::string_view prefix);

}  // namespace mailroom

#endif  // MAILROOM_COMMON_OUTBOX_NOTIFICATION_CHECKS_H_
