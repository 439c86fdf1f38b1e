// Provides Outbox, a role node's durable queue of notifications (SQLite 3 in WAL mode):
// what the send RPCs commit before they answer, what the delivery loop claims and reports
// on, and what OutboxAdmin lists and retries.
//
// Durability (the Postfix rule: acknowledge only what is safely stored). Every method that
// changes the outbox returns only after its transaction has COMMITted, and by default with
// PRAGMA synchronous=FULL, so the WAL is fsync'ed on every commit: an acknowledged
// notification survives kill -9, an OS crash and a power cut. When a write cannot be stored
// (full disk, I/O error) the method fails (UNAVAILABLE) and nothing is acknowledged.
//
// States: QUEUED → (ClaimDue) SENDING → (MarkSent) SENT | (MarkRetry) QUEUED or FAILED |
// (MarkFailed) FAILED | (Release) QUEUED. Entries found in SENDING when the outbox is opened
// were interrupted by a crash and go back to QUEUED, due at once (at-least-once delivery; the
// Message-ID is fixed at enqueue time, so a duplicate is recognisable).
//
// Idempotency. An Enqueue with a non-empty idempotency_key also carries request_fingerprint:
// bytes the caller derives deterministically from everything else in the request (e.g. the
// request message serialized deterministically with its idempotency_key cleared). The outbox
// keeps only a SHA-256 of it (a request may carry a guest's password). The same key with the
// same fingerprint gives back the original notification (duplicate = true; nothing queued);
// the same key with another fingerprint is ALREADY_EXISTS (reason IDEMPOTENCY_KEY_REUSED).
// A key is remembered as long as its entry: until Purge() drops the entry, `retention` after
// it became SENT or FAILED. One key names one notification; a request that queues several
// notifications derives one key per notification (e.g. "<key>/<index>") or uses
// EnqueueBatch, which commits all of them or none.
//
// Privacy. The rendered message (which may contain a guest password) is erased from the
// database as soon as the server has accepted it (MarkSent), with PRAGMA secure_delete so its
// pages are zeroed; older copies of those pages in the WAL file last until the WAL is reused
// from its start (after the next checkpoint) or removed at close. The database file, its WAL
// and its shared-memory file are mode 0600.
//
// Exclusivity. Open takes an exclusive flock(2) on the database file: one Outbox (in one
// process) owns an outbox file, and a second Open of the same file, from this process or
// another, fails (FAILED_PRECONDITION) instead of re-queuing the first one's in-flight sends.
// The lock dies with the process. The file must be on a local file system (SQLite's WAL needs
// shared memory; NFS is not supported).
//
// Checkpoints (copying the WAL back into the database file) run on a background thread with a
// connection of their own, so a commit does not wait for the bulk of one; a commit only copies
// the few frames added while the background copy ran, and checkpoints fully by itself only if
// the WAL grows past ~64 MB.
//
// Thread-safe: one SQLite connection for all reads and writes, serialized by a mutex, plus
// the checkpoint thread's connection. Transactions are short (one fsync each); readers wait
// for a writer's commit. Concurrent Enqueue calls are group-committed: the requests that
// arrive while a commit is in progress share the next transaction and its fsync, and each
// call still returns only after the commit that holds its notification.
#ifndef MAILROOM_COMMON_OUTBOX_H_
#define MAILROOM_COMMON_OUTBOX_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "absl/types/optional.h"
#include "common/base/backoff.h"
#include "common/base/callback_slot.h"
#include "common/base/clock.h"
#include "common/base/diagnosis.h"
#include "common/outbox/group_commit.h"
#include "common/outbox/outbox_types.h"
#include "common/outbox/ulid.h"
#include "proto/mailroom/common/v1/common.pb.h"
#include "proto/mailroom/common/v1/outbox.pb.h"

namespace mailroom {

namespace sqlite {
class Database;
class ExclusiveFile;
class WalCheckpointer;
}  // namespace sqlite

namespace outbox_internal {
struct PendingEnqueue;
}  // namespace outbox_internal

class Outbox {
 public:
  // Opens (creating if needed, mode 0600) the outbox at `path`, migrates its schema, and
  // re-queues sends interrupted by a crash (logged). `clock` must outlive the outbox.
  // FAILED_PRECONDITION if the file is already open (in this process or another), or if its
  // schema is newer than this build; INVALID_ARGUMENT for bad options; UNAVAILABLE for I/O
  // errors.
  static absl::StatusOr<std::unique_ptr<Outbox>> Open(const std::string& path, const Clock* clock,
                                                      OutboxOptions options);
  ~Outbox();
  Outbox(const Outbox&) = delete;
  Outbox& operator=(const Outbox&) = delete;

  // --- Producers (the send RPCs) ---

  // Validates (INVALID_ARGUMENT naming the field), applies idempotency (ALREADY_EXISTS naming
  // `idempotency_key`), then queues the notification due now and returns once it is durably
  // committed. Runs the wake callback after a new entry is committed.
  absl::StatusOr<EnqueueResult> Enqueue(const NewNotification& notification);
  // Enqueues every notification in one transaction: all are committed or none (an error for
  // any one fails the whole batch, and the status message names the index, e.g.
  // "notifications[2].idempotency_key"). Results in the order given.
  absl::StatusOr<std::vector<EnqueueResult>> EnqueueBatch(
      const std::vector<NewNotification>& notifications);

  // A fresh Message-ID (without angle brackets) for a message about to be rendered:
  // "<node>.<ulid>@mailroom", unique and sortable by time.
  std::string NewMessageId();

  // --- The delivery loop ---

  // Moves up to `max` due QUEUED entries (next_attempt_time <= now) to SENDING in one
  // transaction: each one's attempt count goes up by one and the attempt's start is recorded.
  // Returns them with their message and envelope, in priority order: lowest rank first, an
  // entry's rank being its queue time plus kPriorityAgingStep (10 minutes) for each class its
  // kind is below URGENT (common/mail/send_priority.h), so a password reset goes before the
  // reminders queued up to 20 minutes earlier, and a reminder that has waited longer than
  // that goes before newer urgent mail (no class starves).
  absl::StatusOr<std::vector<ClaimedNotification>> ClaimDue(size_t max);
  // ClaimDue for one send-permit request, which carries one class: the first-ranked due
  // entry and those ranked right after it while they are of its class, up to `max`. A batch
  // never puts more urgent mail behind less urgent mail, nor lets less urgent mail ride on a
  // more urgent class's priority at the broker.
  absl::StatusOr<std::vector<ClaimedNotification>> ClaimBatch(size_t max);
  // SENDING → SENT: records the attempt, and erases the message body (its size is kept).
  absl::Status MarkSent(absl::string_view id, const AttemptReport& report);
  // SENDING → QUEUED after a transient failure, due at max(now + backoff, not_before) where
  // backoff = backoff_initial * 2^(attempts - 1) with jitter, capped at backoff_max; or →
  // FAILED, keeping `diagnosis`, if that time is past the retry lifetime. `not_before` is a
  // server- or broker-imposed wait (Retry-After, a paused mailbox).
  absl::StatusOr<RetryDecision> MarkRetry(absl::string_view id, const Diagnosis& diagnosis,
                                          const AttemptReport& report,
                                          absl::optional<absl::Time> not_before = absl::nullopt);
  // SENDING → FAILED after a permanent failure.
  absl::Status MarkFailed(absl::string_view id, const Diagnosis& diagnosis,
                          const AttemptReport& report);
  // SENDING → QUEUED without an attempt having been made (no send permit, no token, shutting
  // down): the attempt count goes back down and no attempt is recorded. Due at `not_before`
  // (now if unset); `wait_reason` is shown to admins while it waits (e.g. "waiting for send
  // permit: 30 messages/minute reached").
  absl::Status Release(absl::string_view id, absl::string_view wait_reason = "",
                       absl::optional<absl::Time> not_before = absl::nullopt);
  // The earliest next_attempt_time of the QUEUED entries (it may be in the past); nullopt when
  // nothing is queued. For the loop to sleep until.
  absl::StatusOr<absl::optional<absl::Time>> NextDueTime() const;
  // Called (outside any outbox lock, on the committing thread) after a commit that may have
  // made an entry due: Enqueue, EnqueueBatch, MarkRetry to QUEUED, Release, Retry. Replaces
  // any previous callback; an empty function removes it.
  void SetWakeCallback(std::function<void()> callback);

  // --- Queries and admin ---

  // The entry with its attempt history. NOT_FOUND for an unknown id.
  absl::StatusOr<OutboxEntry> Get(absl::string_view id) const;
  // The entry queued with `idempotency_key`. NOT_FOUND if none is remembered.
  absl::StatusOr<OutboxEntry> GetByIdempotencyKey(absl::string_view idempotency_key) const;
  // Entries newest first (create_time, then id), filtered by states, kinds and
  // create_time_after; attempt histories omitted. Page size 0 → 50, above 1000 → 1000. A page
  // token from a listing with other filters (or not from this outbox) → INVALID_ARGUMENT.
  // page.total_size is exact; counts ignore the filters.
  absl::StatusOr<ListOutboxResponse> List(const ListOutboxRequest& request) const;
  absl::StatusOr<OutboxCounts> Counts() const;
  // How many entries are not yet delivered (QUEUED or SENDING) and the oldest of them by
  // create_time, with its wait reason or last failure; for the backlog alarm and status.
  absl::StatusOr<UnsentSummary> Unsent() const;
  // OutboxAdmin's retry: FAILED → QUEUED due now with a fresh retry lifetime (expire = now +
  // retry_lifetime; history kept); QUEUED → due now. SENT or SENDING → FAILED_PRECONDITION.
  absl::StatusOr<OutboxEntry> Retry(absl::string_view id);

  // --- Housekeeping ---

  // Deletes SENT and FAILED entries (with their history and idempotency keys) whose last
  // change is older than `retention`. Returns how many were deleted.
  absl::StatusOr<int64_t> Purge();

  // How many interrupted sends Open() re-queued.
  int64_t requeued_on_open() const { return requeued_on_open_; }

 private:
  Outbox(const Clock* clock, OutboxOptions options, std::unique_ptr<sqlite::ExclusiveFile> file,
         std::unique_ptr<sqlite::Database> db, std::unique_ptr<sqlite::Database> ckpt_db);

  absl::Status Recover();
  absl::StatusOr<std::vector<ClaimedNotification>> Claim(size_t max, bool one_class);
  absl::StatusOr<std::vector<EnqueueResult>> CommitInGroup(
      outbox_internal::PendingEnqueue* request);
  // Runs a group of enqueue requests in one transaction; true if any queued a new entry.
  bool CommitGroup(const std::vector<outbox_internal::PendingEnqueue*>& group);
  absl::StatusOr<EnqueueResult> EnqueueLocked(const NewNotification& n, absl::string_view field)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<OutboxEntry> GetLocked(absl::string_view id, bool with_attempts) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<OutboxCounts> CountsLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The state of entry `id`; NOT_FOUND for an unknown id.
  absl::StatusOr<int> StateLocked(absl::string_view id) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Ends the SENDING entry `id`'s attempt: checks the state, records the attempt row.
  absl::StatusOr<int> FinishAttemptLocked(absl::string_view id, const Diagnosis* diagnosis,
                                          const AttemptReport& report, absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // After a failed attempt, moves entry `id` to `state`: QUEUED for another attempt at
  // `next_attempt` (with `wait_reason`), or FAILED (no next attempt); records the attempt's
  // reply, `diagnosis` and sending mailbox.
  absl::Status UpdateAfterFailureLocked(absl::string_view id, common::v1::NotificationState state,
                                        absl::optional<absl::Time> next_attempt,
                                        absl::string_view wait_reason, const Diagnosis& diagnosis,
                                        const AttemptReport& report, absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Wake();

  const Clock* const clock_;
  const OutboxOptions options_;
  Backoff backoff_;
  int64_t requeued_on_open_ = 0;

  // The flock'ed database file; released after both connections are closed.
  std::unique_ptr<sqlite::ExclusiveFile> file_;

  mutable absl::Mutex mu_;
  std::unique_ptr<sqlite::Database> db_ ABSL_GUARDED_BY(mu_);

  UlidGenerator ulids_;

  // Group commit of enqueues (see CommitInGroup).
  GroupCommit<outbox_internal::PendingEnqueue> group_commit_;

  // Background checkpoints of db_'s WAL, with a connection of their own.
  std::unique_ptr<sqlite::WalCheckpointer> checkpointer_;

  CallbackSlot wake_;
};

}  // namespace mailroom

#endif  // MAILROOM_COMMON_OUTBOX_H_
