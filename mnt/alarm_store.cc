#include "mnt/alarm_store.h"

#include <algorithm>
#include <cstdint>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/base/status_macros.h"
#include "common/sqlite/database.h"
#include "common/sqlite/page_token.h"

namespace mailroom::mnt {

namespace mv1 = ::mailroom::mnt::v1;

namespace {

using sqlite::Database;
using sqlite::Statement;
using sqlite::Transaction;
using sqlite::Where;

constexpr int kSchemaVersion = 1;

constexpr char kSchema[] = R"sql(
CREATE TABLE IF NOT EXISTS alarms(
  id INTEGER PRIMARY KEY,
  dedup_key TEXT NOT NULL,
  state INTEGER NOT NULL,
  type INTEGER NOT NULL,
  severity INTEGER NOT NULL,
  source_node TEXT NOT NULL,
  last_occur_us INTEGER NOT NULL,
  suppressed INTEGER NOT NULL,
  window_start_us INTEGER NOT NULL,
  window_end_us INTEGER NOT NULL,
  alarm BLOB NOT NULL);
DROP INDEX IF EXISTS alarms_active_key;
CREATE UNIQUE INDEX IF NOT EXISTS alarms_active_node_key
  ON alarms(source_node, dedup_key) WHERE state = 1;
CREATE INDEX IF NOT EXISTS alarms_recent ON alarms(last_occur_us, id);
CREATE INDEX IF NOT EXISTS alarms_pending ON alarms(window_end_us) WHERE suppressed > 0;
CREATE TABLE IF NOT EXISTS raises(
  idempotency_key TEXT PRIMARY KEY,
  fingerprint BLOB NOT NULL,
  alarm_id INTEGER NOT NULL,
  response BLOB NOT NULL,
  create_us INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS raises_age ON raises(create_us);
CREATE TABLE IF NOT EXISTS settings(
  id INTEGER PRIMARY KEY CHECK (id = 1),
  settings BLOB NOT NULL);
)sql";

constexpr char kAlarmColumns[] = "alarm, window_start_us, window_end_us";

// Micros since the epoch; the infinities map to the int64 extremes so that they order right.
int64_t ToMicros(absl::Time t) {
  if (t == absl::InfinitePast()) return INT64_MIN;
  if (t == absl::InfiniteFuture()) return INT64_MAX;
  return absl::ToUnixMicros(t);
}
absl::Time FromMicros(int64_t us) {
  if (us == INT64_MIN) return absl::InfinitePast();
  if (us == INT64_MAX) return absl::InfiniteFuture();
  return absl::FromUnixMicros(us);
}
int64_t TimestampMicros(const google::protobuf::Timestamp& t) {
  return t.seconds() * 1000000 + t.nanos() / 1000;
}

absl::StatusOr<AlarmRecord> RowToAlarm(const Statement& row, int first_col) {
  AlarmRecord record;
  if (!record.alarm.ParseFromString(row.Text(first_col))) {
    return absl::InternalError("alarm store: unreadable alarm row");
  }
  record.window_start = FromMicros(row.Int(first_col + 1));
  record.window_end = FromMicros(row.Int(first_col + 2));
  return record;
}

absl::StatusOr<absl::optional<AlarmRecord>> OneAlarm(Statement* stmt) {
  MR_ASSIGN_OR_RETURN(const bool row, stmt->Step());
  if (!row) return absl::optional<AlarmRecord>();
  MR_ASSIGN_OR_RETURN(AlarmRecord record, RowToAlarm(*stmt, 0));
  return absl::optional<AlarmRecord>(std::move(record));
}

// The filters of a listing, normalized, so that a page token only works with the same ones.
std::string FilterKey(const mv1::ListAlarmsRequest& request) {
  auto sorted = [](const auto& repeated) {
    std::vector<int> values(repeated.begin(), repeated.end());
    std::sort(values.begin(), values.end());
    values.erase(std::unique(values.begin(), values.end()), values.end());
    return absl::StrJoin(values, ",");
  };
  return absl::StrCat(
      "alarms;t=", sorted(request.types()), ";s=", sorted(request.severities()),
      ";st=", sorted(request.states()), ";n=", absl::WebSafeBase64Escape(request.source_node()),
      ";a=", request.has_occur_after() ? TimestampMicros(request.occur_after()) : -1);
}

}  // namespace

AlarmStore::AlarmStore(std::unique_ptr<Database> db) : db_(std::move(db)) {}
AlarmStore::~AlarmStore() = default;

absl::StatusOr<std::unique_ptr<AlarmStore>> AlarmStore::Open(const std::string& path) {
  // Created 0600 (by Database::Open): alarm text names mailboxes and apps.
  sqlite::DatabaseOptions options;
  options.store_name = "alarm store";
  MR_ASSIGN_OR_RETURN(std::unique_ptr<Database> db, Database::Open(path, std::move(options)));
  MR_RETURN_IF_ERROR(db->EnableWal());
  for (const char* pragma : {"PRAGMA synchronous=FULL", "PRAGMA foreign_keys=ON"}) {
    MR_RETURN_IF_ERROR(db->Exec(pragma));
  }
  MR_ASSIGN_OR_RETURN(const int64_t found, db->UserVersion());
  if (found > kSchemaVersion) return db->NewerSchemaError(absl::StrCat(found), kSchemaVersion);
  MR_RETURN_IF_ERROR(db->Exec(kSchema));
  MR_RETURN_IF_ERROR(db->SetUserVersion(kSchemaVersion));
  return std::unique_ptr<AlarmStore>(new AlarmStore(std::move(db)));
}

absl::StatusOr<absl::optional<RaiseRecord>> AlarmStore::FindRaise(
    absl::string_view idempotency_key) const {
  absl::MutexLock lock(&mu_);
  MR_ASSIGN_OR_RETURN(
      Statement stmt,
      db_->Prepare("SELECT fingerprint, alarm_id, response, create_us FROM raises "
                   "WHERE idempotency_key = ?"));
  MR_ASSIGN_OR_RETURN(const bool row, stmt.Bind(1, idempotency_key).Step());
  if (!row) return absl::optional<RaiseRecord>();
  RaiseRecord record;
  record.idempotency_key = std::string(idempotency_key);
  record.fingerprint = stmt.Text(0);
  record.alarm_id = absl::StrCat(stmt.Int(1));
  if (!record.response.ParseFromString(stmt.Text(2))) {
    return absl::InternalError("alarm store: unreadable raise row");
  }
  record.create_time = FromMicros(stmt.Int(3));
  return absl::optional<RaiseRecord>(std::move(record));
}

absl::StatusOr<absl::optional<AlarmRecord>> AlarmStore::FindActive(
    absl::string_view source_node, absl::string_view dedup_key) const {
  absl::MutexLock lock(&mu_);
  MR_ASSIGN_OR_RETURN(
      Statement stmt,
      db_->Prepare(absl::StrCat("SELECT ", kAlarmColumns,
                                " FROM alarms WHERE source_node = ? AND dedup_key = ? AND state = ",
                                mv1::ALARM_STATE_ACTIVE)));
  stmt.Bind(1, source_node).Bind(2, dedup_key);
  return OneAlarm(&stmt);
}

absl::StatusOr<std::vector<AlarmRecord>> AlarmStore::FindActiveOfAnyNode(
    absl::string_view dedup_key) const {
  absl::MutexLock lock(&mu_);
  MR_ASSIGN_OR_RETURN(
      Statement stmt,
      db_->Prepare(absl::StrCat("SELECT ", kAlarmColumns,
                                " FROM alarms WHERE dedup_key = ? AND state = ",
                                mv1::ALARM_STATE_ACTIVE, " ORDER BY source_node")));
  stmt.Bind(1, dedup_key);
  std::vector<AlarmRecord> records;
  while (true) {
    MR_ASSIGN_OR_RETURN(absl::optional<AlarmRecord> record, OneAlarm(&stmt));
    if (!record.has_value()) break;
    records.push_back(*std::move(record));
  }
  return records;
}

absl::StatusOr<absl::optional<AlarmRecord>> AlarmStore::Get(absl::string_view id) const {
  int64_t number = 0;
  if (!absl::SimpleAtoi(id, &number)) return absl::optional<AlarmRecord>();
  absl::MutexLock lock(&mu_);
  MR_ASSIGN_OR_RETURN(
      Statement stmt,
      db_->Prepare(absl::StrCat("SELECT ", kAlarmColumns, " FROM alarms WHERE id = ?")));
  stmt.Bind(1, number);
  return OneAlarm(&stmt);
}

absl::StatusOr<std::string> AlarmStore::NextAlarmId() const {
  absl::MutexLock lock(&mu_);
  MR_ASSIGN_OR_RETURN(Statement stmt, db_->Prepare("SELECT COALESCE(MAX(id), 0) + 1 FROM alarms"));
  MR_RETURN_IF_ERROR(stmt.Run());
  return absl::StrCat(stmt.Int(0));
}

absl::Status AlarmStore::SaveLocked(const AlarmRecord& record) {
  const mv1::Alarm& alarm = record.alarm;
  int64_t id = 0;
  if (!absl::SimpleAtoi(alarm.id(), &id) || id <= 0) {
    return absl::InternalError(absl::StrCat("alarm store: bad alarm id \"", alarm.id(), "\""));
  }
  MR_ASSIGN_OR_RETURN(
      Statement stmt,
      db_->Prepare(
          "INSERT INTO alarms(id, dedup_key, state, type, severity, source_node, last_occur_us, "
          "suppressed, window_start_us, window_end_us, alarm) VALUES(?,?,?,?,?,?,?,?,?,?,?) "
          "ON CONFLICT(id) DO UPDATE SET dedup_key = excluded.dedup_key, state = excluded.state, "
          "type = excluded.type, severity = excluded.severity, "
          "source_node = excluded.source_node, last_occur_us = excluded.last_occur_us, "
          "suppressed = excluded.suppressed, window_start_us = excluded.window_start_us, "
          "window_end_us = excluded.window_end_us, alarm = excluded.alarm"));
  return stmt.Bind(1, id)
      .Bind(2, alarm.dedup_key())
      .Bind(3, static_cast<int64_t>(alarm.state()))
      .Bind(4, static_cast<int64_t>(alarm.type()))
      .Bind(5, static_cast<int64_t>(alarm.severity()))
      .Bind(6, alarm.source_node())
      .Bind(7, TimestampMicros(alarm.last_occur_time()))
      .Bind(8, alarm.suppressed_count())
      .Bind(9, ToMicros(record.window_start))
      .Bind(10, ToMicros(record.window_end))
      .BindBlob(11, alarm.SerializeAsString())
      .Run();
}

absl::Status AlarmStore::CommitRaise(const AlarmRecord& alarm, const RaiseRecord& raise) {
  absl::MutexLock lock(&mu_);
  Transaction transaction(db_.get());
  MR_RETURN_IF_ERROR(transaction.Begin());
  MR_RETURN_IF_ERROR(SaveLocked(alarm));
  MR_ASSIGN_OR_RETURN(
      Statement stmt,
      db_->Prepare("INSERT INTO raises(idempotency_key, fingerprint, alarm_id, response, "
                   "create_us) VALUES(?,?,?,?,?)"));
  int64_t alarm_id = 0;
  (void)absl::SimpleAtoi(raise.alarm_id, &alarm_id);
  MR_RETURN_IF_ERROR(stmt.Bind(1, raise.idempotency_key)
                         .BindBlob(2, raise.fingerprint)
                         .Bind(3, alarm_id)
                         .BindBlob(4, raise.response.SerializeAsString())
                         .Bind(5, ToMicros(raise.create_time))
                         .Run());
  return transaction.Commit();
}

absl::Status AlarmStore::Save(const AlarmRecord& alarm) {
  absl::MutexLock lock(&mu_);
  return SaveLocked(alarm);
}

absl::StatusOr<mv1::ListAlarmsResponse> AlarmStore::List(
    const mv1::ListAlarmsRequest& request) const {
  MR_ASSIGN_OR_RETURN(const sqlite::KeysetPage page,
                      sqlite::KeysetPage::Start(request.page(), FilterKey(request),
                                                {"last_occur_us", "id"},
                                                sqlite::SortOrder::kDescending));
  Where where;
  where.AddIn("type", request.types());
  where.AddIn("severity", request.severities());
  where.AddIn("state", request.states());
  if (!request.source_node().empty()) where.Add("source_node = ?", {request.source_node()});
  if (request.has_occur_after()) {
    where.Add("last_occur_us >= ?", {TimestampMicros(request.occur_after())});
  }
  mv1::ListAlarmsResponse response;
  absl::MutexLock lock(&mu_);
  MR_RETURN_IF_ERROR(page.Run(
      db_.get(), kAlarmColumns, "alarms", where,
      [&](const Statement& row) -> absl::Status {
        MR_ASSIGN_OR_RETURN(AlarmRecord record, RowToAlarm(row, 0));
        *response.add_alarms() = std::move(record.alarm);
        return absl::OkStatus();
      },
      response.mutable_page()));
  return response;
}

absl::StatusOr<std::vector<AlarmRecord>> AlarmStore::DueSummaries(absl::Time now, int max) const {
  absl::MutexLock lock(&mu_);
  MR_ASSIGN_OR_RETURN(Statement stmt,
                      db_->Prepare(absl::StrCat(
                          "SELECT ", kAlarmColumns,
                          " FROM alarms WHERE suppressed > 0 AND window_end_us <= ? "
                          "ORDER BY window_end_us, id LIMIT ?")));
  stmt.Bind(1, ToMicros(now)).Bind(2, static_cast<int64_t>(max));
  std::vector<AlarmRecord> due;
  while (true) {
    MR_ASSIGN_OR_RETURN(const bool row, stmt.Step());
    if (!row) break;
    MR_ASSIGN_OR_RETURN(AlarmRecord record, RowToAlarm(stmt, 0));
    due.push_back(std::move(record));
  }
  return due;
}

absl::StatusOr<absl::optional<absl::Time>> AlarmStore::NextSummaryTime() const {
  absl::MutexLock lock(&mu_);
  MR_ASSIGN_OR_RETURN(
      Statement stmt,
      db_->Prepare("SELECT MIN(window_end_us), COUNT(*) FROM alarms WHERE suppressed > 0"));
  MR_ASSIGN_OR_RETURN(const bool row, stmt.Step());
  if (!row || stmt.Int(1) == 0) return absl::optional<absl::Time>();
  return absl::optional<absl::Time>(FromMicros(stmt.Int(0)));
}

absl::StatusOr<absl::optional<mv1::AlarmSettings>> AlarmStore::LoadSettings() const {
  absl::MutexLock lock(&mu_);
  MR_ASSIGN_OR_RETURN(Statement stmt, db_->Prepare("SELECT settings FROM settings WHERE id = 1"));
  MR_ASSIGN_OR_RETURN(const bool row, stmt.Step());
  if (!row) return absl::optional<mv1::AlarmSettings>();
  mv1::AlarmSettings settings;
  if (!settings.ParseFromString(stmt.Text(0))) {
    return absl::InternalError("alarm store: unreadable settings row");
  }
  return absl::optional<mv1::AlarmSettings>(std::move(settings));
}

absl::Status AlarmStore::SaveSettings(const mv1::AlarmSettings& settings) {
  absl::MutexLock lock(&mu_);
  MR_ASSIGN_OR_RETURN(Statement stmt,
                      db_->Prepare("INSERT INTO settings(id, settings) VALUES(1, ?) "
                                   "ON CONFLICT(id) DO UPDATE SET settings = excluded.settings"));
  return stmt.BindBlob(1, settings.SerializeAsString()).Run();
}

absl::StatusOr<int64_t> AlarmStore::PurgeRaises(absl::Time before) {
  absl::MutexLock lock(&mu_);
  MR_ASSIGN_OR_RETURN(Statement stmt, db_->Prepare("DELETE FROM raises WHERE create_us < ?"));
  MR_RETURN_IF_ERROR(stmt.Bind(1, ToMicros(before)).Run());
  return db_->Changes();
}

}  // namespace mailroom::mnt
