// Provides the outbox's on-disk format: the SQLite schema (version kOutboxSchemaVersion in
// PRAGMA user_version), its creation/migration at open, and the mapping of an `entries` row to
// an OutboxEntry. Every outbox file ever written must keep opening: a schema change bumps the
// version and adds a migration step here.
//
// Stateless; the functions use the Database they are given (not thread-safe).
#ifndef MAILROOM_COMMON_OUTBOX_OUTBOX_SCHEMA_H_
#define MAILROOM_COMMON_OUTBOX_OUTBOX_SCHEMA_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/sqlite/database.h"
#include "proto/mailroom/common/v1/common.pb.h"
#include "proto/mailroom/common/v1/outbox.pb.h"

namespace mailroom::outbox_schema {

inline constexpr int kOutboxSchemaVersion = 2;

// Creates the schema in a new file, or brings an older file's up to date; FAILED_PRECONDITION
// for a file whose schema is newer than this build's. In one transaction.
absl::Status Migrate(sqlite::Database* db);

// An entry's rank (stored as rank_us; due entries are claimed lowest first): its queue time
// plus kPriorityAgingStep for each class its kind is below URGENT (common/mail/send_priority.h).
int64_t RankMicros(::mailroom::common::v1::NotificationKind kind, int64_t create_us);

// The claim of due entries, lowest rank first (?1: now in microseconds, ?2: at most this many
// rows). It names entries_by_state_rank: left to itself the planner takes entries_by_state_due
// and sorts every due row, message bodies included, at each claim, so that a claim's cost grew
// with the backlog; through the rank index it reads only the rows it returns (and those not yet
// due that rank before them).
extern const char kClaimDueSql[];

// The columns RowToEntry reads, in order ("SELECT <kEntryColumns> FROM entries ...").
extern const char kEntryColumns[];
// Reads one row selected with kEntryColumns. The wait reason is shown only while the entry
// waits (QUEUED and due after `now`).
::mailroom::common::v1::OutboxEntry RowToEntry(const sqlite::Statement& q, absl::Time now);
// The column of create_us and of id in a kEntryColumns row.
inline constexpr int kCreateUsColumn = 17;
inline constexpr int kIdColumn = 0;

// Times are stored as integer microseconds since the Unix epoch (UTC).
inline int64_t Micros(absl::Time t) { return absl::ToUnixMicros(t); }
inline absl::Time FromMicros(int64_t us) { return absl::FromUnixMicros(us); }
void SetTimestamp(int64_t us, google::protobuf::Timestamp* ts);

// "QUEUED", "SENDING", "SENT", "FAILED" or "UNSPECIFIED".
absl::string_view StateName(int state);
// The recipients blob (a Notification holding only recipients).
std::string SerializeRecipients(const std::vector<::mailroom::common::v1::Recipient>& recipients);
void ParseRecipients(const std::string& blob,
                     std::vector<::mailroom::common::v1::Recipient>* out);

}  // namespace mailroom::outbox_schema

#endif  // MAILROOM_COMMON_OUTBOX_OUTBOX_SCHEMA_H_
