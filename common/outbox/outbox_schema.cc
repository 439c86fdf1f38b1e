#include "common/outbox/outbox_schema.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/base/status_macros.h"
#include "common/mail/send_priority.h"
#include "google/protobuf/descriptor.h"

namespace mailroom::outbox_schema {
namespace {

namespace cv1 = ::mailroom::common::v1;

// Times are stored as integer microseconds since the Unix epoch (UTC).
//
// entries: one row per notification (envelope and status; never the body).
// (Version 2 adds entries.rank_us and its index: see AddRanks.)
// messages: the rendered message of each entry not yet SENT (kept apart so that scans of
//   entries never touch large blobs, and deleted on MarkSent).
// attempts: the last kMaxAttemptsKept delivery attempts of each entry.
constexpr char kSchema[] = R"sql(
CREATE TABLE entries (
  id                TEXT PRIMARY KEY NOT NULL,   -- "<node>/<ulid>"
  idempotency_key   TEXT UNIQUE,                 -- NULL when the caller gave none
  fingerprint       BLOB,                        -- SHA-256 of request_fingerprint; NULL without key
  kind              INTEGER NOT NULL,            -- NotificationKind
  state             INTEGER NOT NULL,            -- NotificationState
  node              TEXT NOT NULL,
  from_address      TEXT NOT NULL,
  from_name         TEXT NOT NULL,
  recipients        BLOB NOT NULL,               -- Notification{recipients} serialized
  subject           TEXT NOT NULL,
  message_id        TEXT NOT NULL,
  size_bytes        INTEGER NOT NULL,
  attempts          INTEGER NOT NULL DEFAULT 0,
  last_reply_code   INTEGER NOT NULL DEFAULT 0,
  last_reply_text   TEXT NOT NULL DEFAULT '',
  diagnosis         BLOB,                        -- Diagnosis serialized; NULL if none
  wait_reason       TEXT NOT NULL DEFAULT '',
  sending_mailbox   TEXT NOT NULL DEFAULT '',
  create_us         INTEGER NOT NULL,
  update_us         INTEGER NOT NULL,
  next_attempt_us   INTEGER,                     -- QUEUED only
  attempt_start_us  INTEGER,                     -- SENDING only
  send_us           INTEGER,                     -- SENT only
  expire_us         INTEGER NOT NULL
);
CREATE INDEX entries_by_state_due ON entries(state, next_attempt_us);
CREATE INDEX entries_by_create ON entries(create_us, id);
CREATE TABLE messages (
  entry_id          TEXT PRIMARY KEY NOT NULL,
  message           BLOB NOT NULL
);
CREATE TABLE attempts (
  entry_id          TEXT NOT NULL,
  number            INTEGER NOT NULL,
  start_us          INTEGER NOT NULL,
  end_us            INTEGER NOT NULL,
  reply_code        INTEGER NOT NULL,
  reply_text        TEXT NOT NULL,
  diagnosis         BLOB,
  permit_id         TEXT NOT NULL,
  PRIMARY KEY (entry_id, number)
) WITHOUT ROWID;
)sql";

// Version 2: each entry's rank (RankMicros), the order in which due entries are claimed.
absl::Status AddRanks(sqlite::Database* db) {
  MR_RETURN_IF_ERROR(db->Exec(
      "ALTER TABLE entries ADD COLUMN rank_us INTEGER;"
      "CREATE INDEX entries_by_state_rank ON entries(state, rank_us, id);"));
  const google::protobuf::EnumDescriptor* kinds = cv1::NotificationKind_descriptor();
  for (int i = 0; i < kinds->value_count(); ++i) {
    const auto kind = static_cast<cv1::NotificationKind>(kinds->value(i)->number());
    MR_ASSIGN_OR_RETURN(sqlite::Statement q,
                        db->Prepare("UPDATE entries SET rank_us = create_us + ?1 WHERE kind = ?2"));
    MR_RETURN_IF_ERROR(q.Bind(1, RankMicros(kind, 0)).Bind(2, static_cast<int64_t>(kind)).Run());
  }
  // A kind this build does not know ranks as RankMicros ranks it.
  MR_ASSIGN_OR_RETURN(
      sqlite::Statement rest,
      db->Prepare("UPDATE entries SET rank_us = create_us + ?1 WHERE rank_us IS NULL"));
  return rest.Bind(1, RankMicros(cv1::NOTIFICATION_KIND_UNSPECIFIED, 0)).Run();
}

}  // namespace

int64_t RankMicros(cv1::NotificationKind kind, int64_t create_us) {
  return create_us +
         PriorityLevel(PriorityOf(kind)) * absl::ToInt64Microseconds(kPriorityAgingStep);
}

absl::Status Migrate(sqlite::Database* db) {
  sqlite::Transaction txn(db);
  MR_RETURN_IF_ERROR(txn.Begin());
  MR_ASSIGN_OR_RETURN(int64_t version, db->UserVersion());
  if (version > kOutboxSchemaVersion) {
    return db->NewerSchemaError(absl::StrCat(version), kOutboxSchemaVersion);
  }
  if (version == 0) {
    MR_RETURN_IF_ERROR(db->Exec(kSchema));
    version = 1;
  }
  if (version == 1) {
    MR_RETURN_IF_ERROR(AddRanks(db));
    version = 2;
  }
  MR_RETURN_IF_ERROR(db->SetUserVersion(version));
  return txn.Commit();
}

const char kClaimDueSql[] =
    "SELECT e.id, e.message_id, e.kind, e.from_address, e.from_name, e.recipients, e.attempts, "
    "e.create_us, e.expire_us, m.message "
    "FROM entries e INDEXED BY entries_by_state_rank JOIN messages m ON m.entry_id = e.id "
    "WHERE e.state = 1 AND e.next_attempt_us <= ?1 ORDER BY e.rank_us, e.id LIMIT ?2";

const char kEntryColumns[] =
    "id, idempotency_key, kind, state, node, from_address, from_name, recipients, subject, "
    "message_id, size_bytes, attempts, last_reply_code, last_reply_text, diagnosis, wait_reason, "
    "sending_mailbox, create_us, update_us, next_attempt_us, send_us, expire_us";

void SetTimestamp(int64_t us, google::protobuf::Timestamp* ts) {
  int64_t seconds = us / 1'000'000;
  int64_t micros = us % 1'000'000;
  if (micros < 0) {
    micros += 1'000'000;
    seconds -= 1;
  }
  ts->set_seconds(seconds);
  ts->set_nanos(static_cast<int32_t>(micros * 1000));
}

absl::string_view StateName(int state) {
  if (!cv1::NotificationState_IsValid(state)) return "UNSPECIFIED";
  // The proto's own name without its prefix, so that a new state needs no change here.
  absl::string_view name = cv1::NotificationState_Name(static_cast<cv1::NotificationState>(state));
  absl::ConsumePrefix(&name, "NOTIFICATION_STATE_");
  return name;
}

std::string SerializeRecipients(const std::vector<cv1::Recipient>& recipients) {
  cv1::Notification holder;
  for (const cv1::Recipient& r : recipients) {
    cv1::Recipient* stored = holder.add_recipients();
    *stored->mutable_address() = r.address();
    stored->set_type(r.type());
  }
  return holder.SerializeAsString();
}

void ParseRecipients(const std::string& blob, std::vector<cv1::Recipient>* out) {
  cv1::Notification holder;
  holder.ParseFromString(blob);
  out->assign(holder.recipients().begin(), holder.recipients().end());
}

cv1::OutboxEntry RowToEntry(const sqlite::Statement& q, absl::Time now) {
  cv1::OutboxEntry entry;
  cv1::Notification* n = entry.mutable_notification();
  n->set_id(q.Text(0));
  n->set_idempotency_key(q.Text(1));
  n->set_kind(static_cast<cv1::NotificationKind>(q.Int(2)));
  const int state = static_cast<int>(q.Int(3));
  n->set_state(static_cast<cv1::NotificationState>(state));
  n->set_node(q.Text(4));
  n->mutable_from()->set_address(q.Text(5));
  n->mutable_from()->set_display_name(q.Text(6));
  cv1::Notification recipients;
  recipients.ParseFromString(q.Text(7));
  *n->mutable_recipients() = recipients.recipients();
  n->set_subject(q.Text(8));
  n->set_message_id(q.Text(9));
  n->set_size_bytes(q.Int(10));
  n->set_attempts(static_cast<int32_t>(q.Int(11)));
  n->set_last_reply_code(static_cast<int32_t>(q.Int(12)));
  n->set_last_reply_text(q.Text(13));
  if (!q.IsNull(14)) n->mutable_diagnosis()->ParseFromString(q.Text(14));
  const absl::optional<int64_t> next_attempt = q.OptionalInt(19);
  if (state == cv1::NOTIFICATION_STATE_QUEUED && next_attempt.has_value() &&
      FromMicros(*next_attempt) > now) {
    entry.set_wait_reason(q.Text(15));
  }
  entry.set_sending_mailbox(q.Text(16));
  SetTimestamp(q.Int(17), n->mutable_create_time());
  SetTimestamp(q.Int(18), n->mutable_update_time());
  if (state == cv1::NOTIFICATION_STATE_QUEUED && next_attempt.has_value()) {
    SetTimestamp(*next_attempt, n->mutable_next_attempt_time());
  }
  if (!q.IsNull(20)) SetTimestamp(q.Int(20), n->mutable_send_time());
  SetTimestamp(q.Int(21), n->mutable_expire_time());
  return entry;
}

}  // namespace mailroom::outbox_schema
