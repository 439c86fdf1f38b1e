#include "mnt/alarm_store.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace mailroom::mnt {

namespace mv1 = ::mailroom::mnt::v1;

namespace store_internal {

// Environmental SQLite failures (locks, I/O, a full disk) are UNAVAILABLE: the caller may
// retry the same call; anything else is a bug or a corrupt file.
absl::Status SqliteError(sqlite3* db, int rc, absl::string_view what) {
  const std::string message =
      absl::StrCat("alarm store: ", what, ": ", sqlite3_errstr(rc),
                   db != nullptr ? absl::StrCat(" (", sqlite3_errmsg(db), ")") : std::string());
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_FULL:
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN:
    case SQLITE_NOMEM:
    case SQLITE_READONLY: return absl::UnavailableError(message);
    default: return absl::InternalError(message);
  }
}

// One prepared statement; finalized when it goes out of scope.
class Statement {
 public:
  Statement(sqlite3* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}
  ~Statement() { sqlite3_finalize(stmt_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  Statement& Bind(int i, int64_t value) {
    Check(sqlite3_bind_int64(stmt_, i, value));
    return *this;
  }
  Statement& Bind(int i, absl::string_view text) {
    Check(
        sqlite3_bind_text(stmt_, i, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT));
    return *this;
  }
  Statement& BindBlob(int i, absl::string_view bytes) {
    Check(sqlite3_bind_blob64(stmt_, i, bytes.data(), bytes.size(), SQLITE_TRANSIENT));
    return *this;
  }

  // true with a row, false when done.
  absl::StatusOr<bool> Step() {
    if (!bind_status_.ok()) return bind_status_;
    const int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    return SqliteError(db_, rc, sqlite3_sql(stmt_));
  }
  absl::Status Run() {
    absl::StatusOr<bool> row = Step();
    return row.ok() ? absl::OkStatus() : row.status();
  }

  int64_t Int(int col) const { return sqlite3_column_int64(stmt_, col); }
  std::string Blob(int col) const {
    const void* data = sqlite3_column_blob(stmt_, col);
    const int size = sqlite3_column_bytes(stmt_, col);
    return data == nullptr ? std::string() : std::string(static_cast<const char*>(data), size);
  }

 private:
  void Check(int rc) {
    if (rc != SQLITE_OK && bind_status_.ok()) bind_status_ = SqliteError(db_, rc, "bind");
  }

  sqlite3* db_;
  sqlite3_stmt* stmt_;
  absl::Status bind_status_;
};

class Connection {
 public:
  explicit Connection(sqlite3* db) : db_(db) {}
  ~Connection() { sqlite3_close_v2(db_); }

  absl::Status Exec(const std::string& sql) {
    char* error = nullptr;
    const int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &error);
    sqlite3_free(error);
    return rc == SQLITE_OK ? absl::OkStatus() : SqliteError(db_, rc, sql);
  }
  absl::StatusOr<std::unique_ptr<Statement>> Prepare(const std::string& sql) {
    sqlite3_stmt* stmt = nullptr;
    const int rc = sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt, nullptr);
    if (rc != SQLITE_OK) return SqliteError(db_, rc, absl::StrCat("prepare: ", sql));
    return std::make_unique<Statement>(db_, stmt);
  }
  sqlite3* raw() const { return db_; }

 private:
  sqlite3* db_;
};

// BEGIN IMMEDIATE ... COMMIT; rolled back unless committed.
class Transaction {
 public:
  explicit Transaction(Connection* db) : db_(db) {}
  ~Transaction() {
    if (begun_ && !committed_ && !sqlite3_get_autocommit(db_->raw())) {
      (void)db_->Exec("ROLLBACK");
    }
  }
  absl::Status Begin() {
    absl::Status status = db_->Exec("BEGIN IMMEDIATE");
    begun_ = status.ok();
    return status;
  }
  absl::Status Commit() {
    absl::Status status = db_->Exec("COMMIT");
    committed_ = status.ok();
    return status;
  }

 private:
  Connection* db_;
  bool begun_ = false;
  bool committed_ = false;
};

}  // namespace store_internal

namespace {

using store_internal::Connection;
using store_internal::Statement;
using store_internal::Transaction;

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
CREATE UNIQUE INDEX IF NOT EXISTS alarms_active_key ON alarms(dedup_key) WHERE state = 1;
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
  if (!record.alarm.ParseFromString(row.Blob(first_col))) {
    return absl::InternalError("alarm store: unreadable alarm row");
  }
  record.window_start = FromMicros(row.Int(first_col + 1));
  record.window_end = FromMicros(row.Int(first_col + 2));
  return record;
}

absl::StatusOr<absl::optional<AlarmRecord>> OneAlarm(Statement* stmt) {
  absl::StatusOr<bool> row = stmt->Step();
  if (!row.ok()) return row.status();
  if (!*row) return absl::optional<AlarmRecord>();
  absl::StatusOr<AlarmRecord> record = RowToAlarm(*stmt, 0);
  if (!record.ok()) return record.status();
  return absl::optional<AlarmRecord>(*std::move(record));
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
      "t=", sorted(request.types()), ";s=", sorted(request.severities()),
      ";st=", sorted(request.states()), ";n=", absl::WebSafeBase64Escape(request.source_node()),
      ";a=", request.has_occur_after() ? TimestampMicros(request.occur_after()) : -1);
}

std::string InList(const std::vector<int>& values) { return absl::StrJoin(values, ","); }

}  // namespace

AlarmStore::AlarmStore(std::unique_ptr<Connection> db) : db_(std::move(db)) {}
AlarmStore::~AlarmStore() = default;

absl::StatusOr<std::unique_ptr<AlarmStore>> AlarmStore::Open(const std::string& path) {
  // Created 0600 before SQLite opens it: alarm text names mailboxes and apps.
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return absl::UnavailableError(absl::StrCat("alarm store: cannot open ", path));
  ::close(fd);
  sqlite3* raw = nullptr;
  const int rc =
      sqlite3_open_v2(path.c_str(), &raw,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, nullptr);
  auto db = std::make_unique<Connection>(raw);
  if (rc != SQLITE_OK) return store_internal::SqliteError(raw, rc, absl::StrCat("open ", path));
  sqlite3_busy_timeout(raw, 5000);
  for (const char* pragma :
       {"PRAGMA journal_mode=WAL", "PRAGMA synchronous=FULL", "PRAGMA foreign_keys=ON"}) {
    if (absl::Status s = db->Exec(pragma); !s.ok()) return s;
  }
  absl::StatusOr<std::unique_ptr<Statement>> version = db->Prepare("PRAGMA user_version");
  if (!version.ok()) return version.status();
  absl::StatusOr<bool> row = (*version)->Step();
  if (!row.ok()) return row.status();
  const int64_t found = *row ? (*version)->Int(0) : 0;
  version->reset();
  if (found > kSchemaVersion) {
    return absl::FailedPreconditionError(absl::StrCat("alarm store: ", path, " has schema version ",
                                                      found, ", newer than this build's ",
                                                      kSchemaVersion));
  }
  if (absl::Status s = db->Exec(kSchema); !s.ok()) return s;
  if (absl::Status s = db->Exec(absl::StrCat("PRAGMA user_version=", kSchemaVersion)); !s.ok()) {
    return s;
  }
  return std::unique_ptr<AlarmStore>(new AlarmStore(std::move(db)));
}

absl::StatusOr<absl::optional<RaiseRecord>> AlarmStore::FindRaise(
    absl::string_view idempotency_key) const {
  absl::MutexLock lock(&mu_);
  absl::StatusOr<std::unique_ptr<Statement>> stmt = db_->Prepare(
      "SELECT fingerprint, alarm_id, response, create_us FROM raises WHERE idempotency_key = ?");
  if (!stmt.ok()) return stmt.status();
  (*stmt)->Bind(1, idempotency_key);
  absl::StatusOr<bool> row = (*stmt)->Step();
  if (!row.ok()) return row.status();
  if (!*row) return absl::optional<RaiseRecord>();
  RaiseRecord record;
  record.idempotency_key = std::string(idempotency_key);
  record.fingerprint = (*stmt)->Blob(0);
  record.alarm_id = absl::StrCat((*stmt)->Int(1));
  if (!record.response.ParseFromString((*stmt)->Blob(2))) {
    return absl::InternalError("alarm store: unreadable raise row");
  }
  record.create_time = FromMicros((*stmt)->Int(3));
  return absl::optional<RaiseRecord>(std::move(record));
}

absl::StatusOr<absl::optional<AlarmRecord>> AlarmStore::FindActive(
    absl::string_view dedup_key) const {
  absl::MutexLock lock(&mu_);
  absl::StatusOr<std::unique_ptr<Statement>> stmt = db_->Prepare(
      absl::StrCat("SELECT ", kAlarmColumns,
                   " FROM alarms WHERE dedup_key = ? AND state = ", mv1::ALARM_STATE_ACTIVE));
  if (!stmt.ok()) return stmt.status();
  (*stmt)->Bind(1, dedup_key);
  return OneAlarm(stmt->get());
}

absl::StatusOr<absl::optional<AlarmRecord>> AlarmStore::Get(absl::string_view id) const {
  int64_t number = 0;
  if (!absl::SimpleAtoi(id, &number)) return absl::optional<AlarmRecord>();
  absl::MutexLock lock(&mu_);
  absl::StatusOr<std::unique_ptr<Statement>> stmt =
      db_->Prepare(absl::StrCat("SELECT ", kAlarmColumns, " FROM alarms WHERE id = ?"));
  if (!stmt.ok()) return stmt.status();
  (*stmt)->Bind(1, number);
  return OneAlarm(stmt->get());
}

absl::StatusOr<std::string> AlarmStore::NextAlarmId() const {
  absl::MutexLock lock(&mu_);
  absl::StatusOr<std::unique_ptr<Statement>> stmt =
      db_->Prepare("SELECT COALESCE(MAX(id), 0) + 1 FROM alarms");
  if (!stmt.ok()) return stmt.status();
  absl::StatusOr<bool> row = (*stmt)->Step();
  if (!row.ok()) return row.status();
  return absl::StrCat((*stmt)->Int(0));
}

absl::Status AlarmStore::SaveLocked(const AlarmRecord& record) {
  const mv1::Alarm& alarm = record.alarm;
  int64_t id = 0;
  if (!absl::SimpleAtoi(alarm.id(), &id) || id <= 0) {
    return absl::InternalError(absl::StrCat("alarm store: bad alarm id \"", alarm.id(), "\""));
  }
  absl::StatusOr<std::unique_ptr<Statement>> stmt = db_->Prepare(
      "INSERT INTO alarms(id, dedup_key, state, type, severity, source_node, last_occur_us, "
      "suppressed, window_start_us, window_end_us, alarm) VALUES(?,?,?,?,?,?,?,?,?,?,?) "
      "ON CONFLICT(id) DO UPDATE SET dedup_key = excluded.dedup_key, state = excluded.state, "
      "type = excluded.type, severity = excluded.severity, source_node = excluded.source_node, "
      "last_occur_us = excluded.last_occur_us, suppressed = excluded.suppressed, "
      "window_start_us = excluded.window_start_us, window_end_us = excluded.window_end_us, "
      "alarm = excluded.alarm");
  if (!stmt.ok()) return stmt.status();
  (*stmt)
      ->Bind(1, id)
      .Bind(2, alarm.dedup_key())
      .Bind(3, static_cast<int64_t>(alarm.state()))
      .Bind(4, static_cast<int64_t>(alarm.type()))
      .Bind(5, static_cast<int64_t>(alarm.severity()))
      .Bind(6, alarm.source_node())
      .Bind(7, TimestampMicros(alarm.last_occur_time()))
      .Bind(8, alarm.suppressed_count())
      .Bind(9, ToMicros(record.window_start))
      .Bind(10, ToMicros(record.window_end))
      .BindBlob(11, alarm.SerializeAsString());
  return (*stmt)->Run();
}

absl::Status AlarmStore::CommitRaise(const AlarmRecord& alarm, const RaiseRecord& raise) {
  absl::MutexLock lock(&mu_);
  Transaction transaction(db_.get());
  if (absl::Status s = transaction.Begin(); !s.ok()) return s;
  if (absl::Status s = SaveLocked(alarm); !s.ok()) return s;
  absl::StatusOr<std::unique_ptr<Statement>> stmt = db_->Prepare(
      "INSERT INTO raises(idempotency_key, fingerprint, alarm_id, response, create_us) "
      "VALUES(?,?,?,?,?)");
  if (!stmt.ok()) return stmt.status();
  int64_t alarm_id = 0;
  (void)absl::SimpleAtoi(raise.alarm_id, &alarm_id);
  (*stmt)
      ->Bind(1, raise.idempotency_key)
      .BindBlob(2, raise.fingerprint)
      .Bind(3, alarm_id)
      .BindBlob(4, raise.response.SerializeAsString())
      .Bind(5, ToMicros(raise.create_time));
  if (absl::Status s = (*stmt)->Run(); !s.ok()) return s;
  return transaction.Commit();
}

absl::Status AlarmStore::Save(const AlarmRecord& alarm) {
  absl::MutexLock lock(&mu_);
  return SaveLocked(alarm);
}

absl::StatusOr<mv1::ListAlarmsResponse> AlarmStore::List(
    const mv1::ListAlarmsRequest& request) const {
  int page_size = request.page().page_size();
  if (page_size == 0) page_size = 50;
  if (page_size > 1000) page_size = 1000;
  const std::string filter_key = FilterKey(request);

  // Filters become SQL with bound values; the IN lists hold validated enum numbers only.
  std::vector<std::string> where;
  auto in = [&](const char* column, const auto& repeated) {
    if (repeated.empty()) return;
    where.push_back(absl::StrCat(column, " IN (",
                                 InList(std::vector<int>(repeated.begin(), repeated.end())), ")"));
  };
  in("type", request.types());
  in("severity", request.severities());
  in("state", request.states());
  if (!request.source_node().empty()) where.push_back("source_node = :node");
  if (request.has_occur_after()) where.push_back("last_occur_us >= :after");
  const std::string filter_sql =
      where.empty() ? "" : absl::StrCat(" WHERE ", absl::StrJoin(where, " AND "));

  bool has_cursor = false;
  int64_t cursor_us = 0;
  int64_t cursor_id = 0;
  if (!request.page().page_token().empty()) {
    const absl::Status bad = absl::InvalidArgumentError(
        "page.page_token: not a token from this listing (use it with the same filters)");
    std::string decoded;
    if (!absl::WebSafeBase64Unescape(request.page().page_token(), &decoded)) return bad;
    std::vector<std::string> parts = absl::StrSplit(decoded, absl::MaxSplits('\n', 3));
    if (parts.size() != 4 || parts[0] != "v1" || !absl::SimpleAtoi(parts[1], &cursor_us) ||
        !absl::SimpleAtoi(parts[2], &cursor_id) || parts[3] != filter_key) {
      return bad;
    }
    has_cursor = true;
  }
  std::string page_sql = filter_sql;
  if (has_cursor) {
    page_sql = absl::StrCat(
        where.empty() ? " WHERE " : absl::StrCat(filter_sql, " AND "),
        "(last_occur_us < :cursor_us OR (last_occur_us = :cursor_us AND id < :cursor_id))");
  }

  absl::MutexLock lock(&mu_);
  auto bind_filters = [&](Statement* stmt, sqlite3_stmt* raw) {
    auto index = [raw](const char* name) { return sqlite3_bind_parameter_index(raw, name); };
    if (int i = index(":node"); i > 0) stmt->Bind(i, request.source_node());
    if (int i = index(":after"); i > 0) stmt->Bind(i, TimestampMicros(request.occur_after()));
    if (int i = index(":cursor_us"); i > 0) stmt->Bind(i, cursor_us);
    if (int i = index(":cursor_id"); i > 0) stmt->Bind(i, cursor_id);
  };
  mv1::ListAlarmsResponse response;
  {
    const std::string sql = absl::StrCat("SELECT COUNT(*) FROM alarms", filter_sql);
    sqlite3_stmt* raw = nullptr;
    if (int rc = sqlite3_prepare_v2(db_->raw(), sql.c_str(), -1, &raw, nullptr); rc != SQLITE_OK) {
      return store_internal::SqliteError(db_->raw(), rc, sql);
    }
    Statement stmt(db_->raw(), raw);
    bind_filters(&stmt, raw);
    absl::StatusOr<bool> row = stmt.Step();
    if (!row.ok()) return row.status();
    response.mutable_page()->set_total_size(stmt.Int(0));
  }
  const std::string sql =
      absl::StrCat("SELECT ", kAlarmColumns, ", last_occur_us, id FROM alarms", page_sql,
                   " ORDER BY last_occur_us DESC, id DESC LIMIT ", page_size + 1);
  sqlite3_stmt* raw = nullptr;
  if (int rc = sqlite3_prepare_v2(db_->raw(), sql.c_str(), -1, &raw, nullptr); rc != SQLITE_OK) {
    return store_internal::SqliteError(db_->raw(), rc, sql);
  }
  Statement stmt(db_->raw(), raw);
  bind_filters(&stmt, raw);
  int64_t last_us = 0;
  int64_t last_id = 0;
  while (true) {
    absl::StatusOr<bool> row = stmt.Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    if (response.alarms_size() == page_size) {
      response.mutable_page()->set_next_page_token(absl::WebSafeBase64Escape(
          absl::StrCat("v1\n", last_us, "\n", last_id, "\n", filter_key)));
      break;
    }
    absl::StatusOr<AlarmRecord> record = RowToAlarm(stmt, 0);
    if (!record.ok()) return record.status();
    *response.add_alarms() = std::move(record->alarm);
    last_us = stmt.Int(3);
    last_id = stmt.Int(4);
  }
  return response;
}

absl::StatusOr<std::vector<AlarmRecord>> AlarmStore::DueSummaries(absl::Time now, int max) const {
  absl::MutexLock lock(&mu_);
  absl::StatusOr<std::unique_ptr<Statement>> stmt =
      db_->Prepare(absl::StrCat("SELECT ", kAlarmColumns,
                                " FROM alarms WHERE suppressed > 0 AND window_end_us <= ? "
                                "ORDER BY window_end_us, id LIMIT ?"));
  if (!stmt.ok()) return stmt.status();
  (*stmt)->Bind(1, ToMicros(now)).Bind(2, static_cast<int64_t>(max));
  std::vector<AlarmRecord> due;
  while (true) {
    absl::StatusOr<bool> row = (*stmt)->Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    absl::StatusOr<AlarmRecord> record = RowToAlarm(**stmt, 0);
    if (!record.ok()) return record.status();
    due.push_back(*std::move(record));
  }
  return due;
}

absl::StatusOr<absl::optional<absl::Time>> AlarmStore::NextSummaryTime() const {
  absl::MutexLock lock(&mu_);
  absl::StatusOr<std::unique_ptr<Statement>> stmt =
      db_->Prepare("SELECT MIN(window_end_us), COUNT(*) FROM alarms WHERE suppressed > 0");
  if (!stmt.ok()) return stmt.status();
  absl::StatusOr<bool> row = (*stmt)->Step();
  if (!row.ok()) return row.status();
  if (!*row || (*stmt)->Int(1) == 0) return absl::optional<absl::Time>();
  return absl::optional<absl::Time>(FromMicros((*stmt)->Int(0)));
}

absl::StatusOr<absl::optional<mv1::AlarmSettings>> AlarmStore::LoadSettings() const {
  absl::MutexLock lock(&mu_);
  absl::StatusOr<std::unique_ptr<Statement>> stmt =
      db_->Prepare("SELECT settings FROM settings WHERE id = 1");
  if (!stmt.ok()) return stmt.status();
  absl::StatusOr<bool> row = (*stmt)->Step();
  if (!row.ok()) return row.status();
  if (!*row) return absl::optional<mv1::AlarmSettings>();
  mv1::AlarmSettings settings;
  if (!settings.ParseFromString((*stmt)->Blob(0))) {
    return absl::InternalError("alarm store: unreadable settings row");
  }
  return absl::optional<mv1::AlarmSettings>(std::move(settings));
}

absl::Status AlarmStore::SaveSettings(const mv1::AlarmSettings& settings) {
  absl::MutexLock lock(&mu_);
  absl::StatusOr<std::unique_ptr<Statement>> stmt = db_->Prepare(
      "INSERT INTO settings(id, settings) VALUES(1, ?) "
      "ON CONFLICT(id) DO UPDATE SET settings = excluded.settings");
  if (!stmt.ok()) return stmt.status();
  (*stmt)->BindBlob(1, settings.SerializeAsString());
  return (*stmt)->Run();
}

absl::StatusOr<int64_t> AlarmStore::PurgeRaises(absl::Time before) {
  absl::MutexLock lock(&mu_);
  absl::StatusOr<std::unique_ptr<Statement>> stmt =
      db_->Prepare("DELETE FROM raises WHERE create_us < ?");
  if (!stmt.ok()) return stmt.status();
  (*stmt)->Bind(1, ToMicros(before));
  if (absl::Status s = (*stmt)->Run(); !s.ok()) return s;
  return static_cast<int64_t>(sqlite3_changes(db_->raw()));
}

}  // namespace mailroom::mnt
