// Provides the value types of the Outbox API (outbox.h): its options, a notification to queue,
// a claimed notification, an attempt report, a retry decision and the unsent backlog. Plain structs; callers
// include outbox.h, which includes this.
#ifndef MAILROOM_COMMON_OUTBOX_OUTBOX_TYPES_H_
#define MAILROOM_COMMON_OUTBOX_OUTBOX_TYPES_H_

#include <functional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "absl/types/optional.h"
#include "proto/mailroom/common/v1/common.pb.h"
#include "proto/mailroom/common/v1/outbox.pb.h"

namespace mailroom {

using ::mailroom::common::v1::EmailAddress;
using ::mailroom::common::v1::ListOutboxRequest;
using ::mailroom::common::v1::ListOutboxResponse;
using ::mailroom::common::v1::NotificationKind;
using ::mailroom::common::v1::NotificationState;
using ::mailroom::common::v1::OutboxCounts;
using ::mailroom::common::v1::OutboxEntry;
using ::mailroom::common::v1::Recipient;

struct OutboxOptions {
  // This node's name: the prefix of every notification id ("<node_name>/<ulid>") and part of
  // generated Message-IDs. Required.
  std::string node_name;
  // How long after it was queued a notification is retried before it is FAILED.
  absl::Duration retry_lifetime = absl::Hours(24);
  // First retry delay; it doubles with every attempt, up to backoff_max.
  absl::Duration backoff_initial = absl::Seconds(30);
  absl::Duration backoff_max = absl::Minutes(15);
  // Each delay is multiplied by a factor drawn uniformly from [1 - jitter, 1 + jitter]
  // (then capped at backoff_max). 0 disables jitter.
  double jitter = 0.2;
  // How long SENT and FAILED entries (and their idempotency keys) are kept; see Purge().
  absl::Duration retention = absl::Hours(24 * 7);
  // Uniform draws in [0, 1) for the jitter; empty means a real random source. A test pins it
  // (0.5 gives no jitter).
  std::function<double()> random_unit;
  // true: PRAGMA synchronous=FULL, the WAL is fsync'ed at every commit (survives power loss).
  // false: synchronous=NORMAL, fsync only at checkpoints (survives kill -9 of the process but
  // may lose the last commits on an OS crash or power cut). Keep true in production.
  bool sync_every_commit = true;
  // How long a statement waits for a lock held by another connection before failing.
  absl::Duration busy_timeout = absl::Seconds(5);
};

// A notification to queue. The envelope is stored beside the message for the delivery loop
// and the status view; the message itself is opaque bytes.
struct NewNotification {
  // The caller's idempotency key (printable ASCII, at most 256 characters); empty for
  // notifications the service queues by itself.
  std::string idempotency_key;
  // Required when idempotency_key is set; see "Idempotency" above.
  std::string request_fingerprint;
  NotificationKind kind = ::mailroom::common::v1::NOTIFICATION_KIND_UNSPECIFIED;
  // The From: address (display name kept for the status view).
  EmailAddress from;
  // To, Cc and Bcc recipients; only address and type are read. At least one.
  std::vector<Recipient> recipients;
  // The Subject: as rendered (UTF-8), for the status view.
  std::string subject;
  // The Message-ID inside `message`, without angle brackets. Required: the message is
  // rendered before it is queued, so the caller fixes it first (Outbox::NewMessageId()).
  std::string message_id;
  // The rendered RFC 5322 message, CRLF line endings, as it goes after DATA.
  std::string message;
};

struct EnqueueResult {
  std::string notification_id;
  // The Message-ID stored with the notification (the original one for a duplicate).
  std::string message_id;
  // True when the idempotency key named an existing notification with the same content;
  // nothing new was queued.
  bool duplicate = false;
};

// A notification claimed for one delivery attempt: everything the sender needs.
struct ClaimedNotification {
  std::string id;
  std::string message_id;
  NotificationKind kind = ::mailroom::common::v1::NOTIFICATION_KIND_UNSPECIFIED;
  EmailAddress from;
  std::vector<Recipient> recipients;
  std::string message;
  // This attempt's 1-based number.
  int attempt = 0;
  absl::Time create_time;
  // The end of the retry lifetime.
  absl::Time expire_time;
};

// How one delivery attempt ended, as recorded in the entry's history. Aggregate, so a call
// reads MarkSent(id, {250, "2.0.0 OK queued as 4Bf"}).
struct AttemptReport {
  // The final SMTP reply code (250 on success); 0 if the attempt ended before any reply
  // (network, token, permit).
  int reply_code = 0;
  // The final reply text as the server sent it (multi-line replies joined with "\n").
  std::string reply_text;
  // The broker send-permit id used, if one was granted.
  std::string permit_id;
  // The mailbox the attempt was sent through (the broker's Username), if known.
  std::string sending_mailbox;
};

// The mail of an outbox not yet delivered (QUEUED or SENDING): the backlog.
struct UnsentSummary {
  int64_t count = 0;
  // The entry queued first among them (attempt history omitted); nullopt when count is 0.
  absl::optional<OutboxEntry> oldest;
};

// What MarkRetry decided.
struct RetryDecision {
  // QUEUED (retried at next_attempt_time) or FAILED (the retry lifetime ran out: raise the
  // alarm).
  NotificationState state = ::mailroom::common::v1::NOTIFICATION_STATE_UNSPECIFIED;
  absl::Time next_attempt_time = absl::InfinitePast();
};

}  // namespace mailroom

#endif  // MAILROOM_COMMON_OUTBOX_OUTBOX_TYPES_H_
