// The outbox: opening and recovery, enqueueing (with group commit) and housekeeping. The
// delivery loop's calls are in outbox_delivery.cc, queries and admin in outbox_queries.cc.
#include "common/outbox/outbox.h"

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/types/span.h"
#include "common/base/logging.h"
#include "common/base/proto_hash.h"
#include "common/base/status_macros.h"
#include "common/outbox/notification_checks.h"
#include "common/outbox/outbox_schema.h"
#include "common/rpc/status_grpc.h"
#include "common/sqlite/database.h"
#include "common/sqlite/exclusive_file.h"
#include "common/sqlite/wal_checkpointer.h"

namespace mailroom {

namespace outbox_internal {

// One Enqueue or EnqueueBatch call waiting for its group's commit.
struct PendingEnqueue {
  std::vector<const NewNotification*> notifications;
  bool batch = false;  // name fields "notifications[i]."
  absl::StatusOr<std::vector<EnqueueResult>> result;
};

}  // namespace outbox_internal

namespace {

namespace cv1 = ::mailroom::common::v1;
using outbox_internal::PendingEnqueue;
using outbox_schema::Micros;
using sqlite::Database;
using sqlite::Statement;
using sqlite::Transaction;

constexpr char kStoreName[] = "outbox";

// Characters allowed in the left part of a generated Message-ID (RFC 5322 atext, minus a few
// that confuse people).
std::string MessageIdSafe(absl::string_view s) {
  std::string out;
  for (char c : s) out.push_back(absl::ascii_isalnum(c) || c == '-' || c == '_' ? c : '-');
  return out;
}

absl::Status CheckOptions(const OutboxOptions& options) {
  if (options.node_name.empty() || options.node_name.find('/') != std::string::npos ||
      !IsPrintableAscii(options.node_name)) {
    return absl::InvalidArgumentError(
        "node_name: required, printable ASCII without '/' or spaces");
  }
  if (options.retry_lifetime <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("retry_lifetime: must be positive");
  }
  if (options.backoff_initial <= absl::ZeroDuration() ||
      options.backoff_max < options.backoff_initial) {
    return absl::InvalidArgumentError(
        "backoff_initial, backoff_max: need 0 < backoff_initial <= backoff_max");
  }
  if (!(options.jitter >= 0 && options.jitter < 1)) {
    return absl::InvalidArgumentError("jitter: must be in [0, 1)");
  }
  if (options.retention < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("retention: must not be negative");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Database>> OpenConnection(const std::string& path,
                                                         const OutboxOptions& options) {
  sqlite::DatabaseOptions db_options;
  db_options.store_name = kStoreName;
  db_options.busy_timeout = options.busy_timeout;
  return Database::Open(path, std::move(db_options));
}

// Runs each statement of `sqls` in turn with ?1 bound to `value`; returns how many rows the
// last one changed.
absl::StatusOr<int64_t> RunEach(Database* db, absl::Span<const char* const> sqls,
                                int64_t value) {
  for (const char* sql : sqls) {
    MR_ASSIGN_OR_RETURN(Statement q, db->Prepare(sql));
    MR_RETURN_IF_ERROR(q.Bind(1, value).Run());
  }
  return db->Changes();
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Open

absl::StatusOr<std::unique_ptr<Outbox>> Outbox::Open(const std::string& path, const Clock* clock,
                                                     OutboxOptions options) {
  if (clock == nullptr) return absl::InvalidArgumentError("outbox: clock is required");
  MR_RETURN_IF_ERROR(CheckOptions(options));
  // The file holds message bodies (guest passwords until sent): created private. Declared
  // before the connections, so that it is released after them on failure.
  MR_ASSIGN_OR_RETURN(std::unique_ptr<sqlite::ExclusiveFile> file,
                      sqlite::ExclusiveFile::Acquire(path, kStoreName));
  MR_ASSIGN_OR_RETURN(std::unique_ptr<Database> db, OpenConnection(path, options));
  MR_RETURN_IF_ERROR(db->EnableWal());
  for (const char* pragma :
       {options.sync_every_commit ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL",
        "PRAGMA secure_delete=ON", "PRAGMA journal_size_limit=16777216"}) {
    MR_RETURN_IF_ERROR(db->Exec(pragma));
  }
  MR_RETURN_IF_ERROR(outbox_schema::Migrate(db.get()));

  // The checkpoint connection must have read the database once to be in WAL mode itself.
  MR_ASSIGN_OR_RETURN(std::unique_ptr<Database> ckpt_db, OpenConnection(path, options));
  MR_RETURN_IF_ERROR(ckpt_db->Exec("SELECT COUNT(*) FROM sqlite_schema"));

  std::unique_ptr<Outbox> outbox(
      new Outbox(clock, std::move(options), std::move(file), std::move(db), std::move(ckpt_db)));
  MR_RETURN_IF_ERROR(outbox->Recover());
  return outbox;
}

Outbox::Outbox(const Clock* clock, OutboxOptions options,
               std::unique_ptr<sqlite::ExclusiveFile> file, std::unique_ptr<Database> db,
               std::unique_ptr<Database> ckpt_db)
    : clock_(clock),
      options_(std::move(options)),
      backoff_(BackoffPolicy{options_.backoff_initial, options_.backoff_max, options_.jitter,
                             /*cap_after_jitter=*/true},
               options_.random_unit),
      file_(std::move(file)),
      db_(std::move(db)),
      ulids_(clock) {
  absl::MutexLock lock(&mu_);
  checkpointer_ =
      std::make_unique<sqlite::WalCheckpointer>(db_.get(), std::move(ckpt_db), kLogOutbox);
}

Outbox::~Outbox() {
  checkpointer_.reset();
  {
    absl::MutexLock lock(&mu_);
    db_.reset();  // the last connection: checkpoints and removes the WAL
  }
  file_.reset();
}

absl::Status Outbox::Recover() {
  absl::MutexLock lock(&mu_);
  const int64_t now = Micros(clock_->Now());
  Transaction txn(db_.get());
  MR_RETURN_IF_ERROR(txn.Begin());
  static constexpr const char* kRequeue[] = {
      // The interrupted attempt stays counted (it may have reached the server) and is
      // recorded.
      "INSERT OR REPLACE INTO attempts (entry_id, number, start_us, end_us, reply_code, "
      "reply_text, diagnosis, permit_id) "
      "SELECT id, attempts, COALESCE(attempt_start_us, ?1), ?1, 0, "
      "'interrupted: the process stopped during this attempt; re-queued on restart', "
      "NULL, '' FROM entries WHERE state = 2 AND attempts > 0",
      "UPDATE entries SET state = 1, next_attempt_us = ?1, "
      "attempt_start_us = NULL, wait_reason = '', update_us = ?1 WHERE state = 2",
  };
  MR_ASSIGN_OR_RETURN(requeued_on_open_, RunEach(db_.get(), kRequeue, now));
  MR_RETURN_IF_ERROR(txn.Commit());
  if (requeued_on_open_ > 0) {
    MR_LOG(kWarn, kLogOutbox) << "re-queued " << requeued_on_open_
                              << " notification(s) whose sending was interrupted by a restart";
  }
  return absl::OkStatus();
}

std::string Outbox::NewMessageId() {
  return absl::StrCat(MessageIdSafe(options_.node_name), ".", ulids_.Next(), "@mailroom");
}

// ---------------------------------------------------------------------------------------------
// Enqueue

absl::StatusOr<EnqueueResult> Outbox::Enqueue(const NewNotification& notification) {
  MR_RETURN_IF_ERROR(ValidateNotification(notification, ""));
  PendingEnqueue request;
  request.notifications = {&notification};
  MR_ASSIGN_OR_RETURN(std::vector<EnqueueResult> results, CommitInGroup(&request));
  return std::move(results[0]);
}

absl::StatusOr<std::vector<EnqueueResult>> Outbox::EnqueueBatch(
    const std::vector<NewNotification>& notifications) {
  PendingEnqueue request;
  request.batch = true;
  for (size_t i = 0; i < notifications.size(); ++i) {
    MR_RETURN_IF_ERROR(
        ValidateNotification(notifications[i], absl::StrCat("notifications[", i, "].")));
    request.notifications.push_back(&notifications[i]);
  }
  if (notifications.empty()) return std::vector<EnqueueResult>();
  return CommitInGroup(&request);
}

// Concurrent enqueuers share one transaction and its fsync (group_commit.h).
absl::StatusOr<std::vector<EnqueueResult>> Outbox::CommitInGroup(PendingEnqueue* request) {
  bool queued_any = false;
  group_commit_.Submit(request, [&](const std::vector<PendingEnqueue*>& group) {
    queued_any = CommitGroup(group);
  });
  if (queued_any) Wake();
  return std::move(request->result);
}

// A request whose idempotency key conflicts fails alone (a batch's partial inserts are rolled
// back to its savepoint); any other error fails the whole group and nothing of it is
// acknowledged.
bool Outbox::CommitGroup(const std::vector<PendingEnqueue*>& group) {
  bool queued_any = false;
  absl::MutexLock lock(&mu_);
  Transaction txn(db_.get());
  absl::Status group_status = txn.Begin();
  for (PendingEnqueue* pending : group) {
    if (!group_status.ok()) break;
    const bool savepoint = pending->notifications.size() > 1;
    if (savepoint) {
      if (group_status = db_->Exec("SAVEPOINT batch"); !group_status.ok()) break;
    }
    std::vector<EnqueueResult> results;
    absl::Status status;
    for (size_t i = 0; i < pending->notifications.size() && status.ok(); ++i) {
      absl::StatusOr<EnqueueResult> result = EnqueueLocked(
          *pending->notifications[i],
          pending->batch ? absl::StrCat("notifications[", i, "].") : std::string());
      if (result.ok()) {
        results.push_back(*std::move(result));
      } else {
        status = result.status();
      }
    }
    if (!status.ok() && !absl::IsAlreadyExists(status)) {
      group_status = status;  // a storage failure: the transaction is lost
      break;
    }
    if (savepoint) {
      if (!status.ok()) {
        if (group_status = db_->Exec("ROLLBACK TO batch"); !group_status.ok()) break;
      }
      if (group_status = db_->Exec("RELEASE batch"); !group_status.ok()) break;
    }
    if (status.ok()) {
      for (const EnqueueResult& r : results) queued_any |= !r.duplicate;
      pending->result = std::move(results);
    } else {
      pending->result = status;
    }
  }
  if (group_status.ok()) group_status = txn.Commit();
  if (!group_status.ok()) {
    for (PendingEnqueue* pending : group) pending->result = group_status;
    return false;
  }
  return queued_any;
}

absl::StatusOr<EnqueueResult> Outbox::EnqueueLocked(const NewNotification& n,
                                                    absl::string_view field) {
  std::string fingerprint;
  if (!n.idempotency_key.empty()) {
    fingerprint = Sha256(n.request_fingerprint);
    MR_ASSIGN_OR_RETURN(
        Statement q,
        db_->Prepare("SELECT id, message_id, fingerprint FROM entries WHERE idempotency_key = ?"));
    MR_ASSIGN_OR_RETURN(const bool row, q.Bind(1, n.idempotency_key).Step());
    if (row) {
      EnqueueResult existing{q.Text(0), q.Text(1), /*duplicate=*/true};
      if (q.Text(2) != fingerprint) {
        return WithReason(
            absl::AlreadyExistsError(absl::StrCat(
                field, "idempotency_key: \"", n.idempotency_key,
                "\" was already used for notification ", existing.notification_id,
                " with different content")),
            "IDEMPOTENCY_KEY_REUSED");
      }
      MR_LOG(kDebug, kLogOutbox) << "duplicate request for " << existing.notification_id
                                 << " (same idempotency key and content); nothing queued";
      return existing;
    }
  }

  const absl::Time now_time = clock_->Now();
  const int64_t now = Micros(now_time);
  EnqueueResult result{absl::StrCat(options_.node_name, "/", ulids_.Next()), n.message_id, false};
  {
    MR_ASSIGN_OR_RETURN(
        Statement insert,
        db_->Prepare(
            "INSERT INTO entries (id, idempotency_key, fingerprint, kind, state, node, "
            "from_address, from_name, recipients, subject, message_id, size_bytes, create_us, "
            "update_us, next_attempt_us, expire_us, rank_us) "
            "VALUES (?1, ?2, ?3, ?4, 1, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?12, ?12, ?13, ?14)"));
    insert.Bind(1, result.notification_id);
    if (n.idempotency_key.empty()) {
      insert.BindNull(2).BindNull(3);
    } else {
      insert.Bind(2, n.idempotency_key).BindBlob(3, fingerprint);
    }
    MR_RETURN_IF_ERROR(insert.Bind(4, static_cast<int64_t>(n.kind))
                           .Bind(5, options_.node_name)
                           .Bind(6, n.from.address())
                           .Bind(7, n.from.display_name())
                           .BindBlob(8, outbox_schema::SerializeRecipients(n.recipients))
                           .Bind(9, n.subject)
                           .Bind(10, n.message_id)
                           .Bind(11, static_cast<int64_t>(n.message.size()))
                           .Bind(12, now)
                           .Bind(13, Micros(now_time + options_.retry_lifetime))
                           .Bind(14, outbox_schema::RankMicros(n.kind, now))
                           .Run());
  }
  {
    MR_ASSIGN_OR_RETURN(Statement q,
                        db_->Prepare("INSERT INTO messages (entry_id, message) VALUES (?, ?)"));
    MR_RETURN_IF_ERROR(q.Bind(1, result.notification_id).BindBlobNoCopy(2, n.message).Run());
  }
  MR_LOG(kDebug, kLogOutbox) << "queued " << result.notification_id << " ("
                             << cv1::NotificationKind_Name(n.kind) << ", " << n.message.size()
                             << " bytes, Message-ID <" << n.message_id << ">)";
  return result;
}

void Outbox::SetWakeCallback(std::function<void()> callback) { wake_.Set(std::move(callback)); }

void Outbox::Wake() { wake_.Run(); }

// ---------------------------------------------------------------------------------------------
// Housekeeping

absl::StatusOr<int64_t> Outbox::Purge() {
  absl::MutexLock lock(&mu_);
  const int64_t cutoff = Micros(clock_->Now() - options_.retention);
  Transaction txn(db_.get());
  MR_RETURN_IF_ERROR(txn.Begin());
  static constexpr const char* kDeletes[] = {
      "DELETE FROM attempts WHERE entry_id IN "
      "(SELECT id FROM entries WHERE state IN (3, 4) AND update_us < ?)",
      "DELETE FROM messages WHERE entry_id IN "
      "(SELECT id FROM entries WHERE state IN (3, 4) AND update_us < ?)",
      "DELETE FROM entries WHERE state IN (3, 4) AND update_us < ?",
  };
  MR_ASSIGN_OR_RETURN(const int64_t purged, RunEach(db_.get(), kDeletes, cutoff));
  MR_RETURN_IF_ERROR(txn.Commit());
  if (purged > 0) {
    MR_LOG(kInfo, kLogOutbox) << "purged " << purged
                              << " sent or failed notification(s) past their retention";
  }
  return purged;
}

}  // namespace mailroom
