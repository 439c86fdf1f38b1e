#include "common/sqlite/database.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <utility>

#include "absl/strings/ascii.h"

namespace mailroom::sqlite {

absl::Status SqliteError(absl::string_view store, sqlite3* db, int rc, absl::string_view what) {
  const std::string detail =
      db != nullptr ? absl::StrCat(sqlite3_errstr(rc), " (", sqlite3_errmsg(db), ")")
                    : std::string(sqlite3_errstr(rc));
  const std::string message = absl::StrCat(store, ": ", what, ": ", detail);
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_FULL:
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN:
    case SQLITE_NOMEM:
    case SQLITE_PROTOCOL:
    case SQLITE_READONLY:
      return absl::UnavailableError(message);
    default:
      return absl::InternalError(message);
  }
}

// ---------------------------------------------------------------------------------------------
// Statement

Statement::Statement(absl::string_view store, sqlite3* db, sqlite3_stmt* stmt, bool* in_use)
    : store_(store), db_(db), stmt_(stmt), in_use_(in_use) {
  if (in_use_ != nullptr) *in_use_ = true;
}

Statement::Statement(Statement&& other) noexcept
    : store_(std::move(other.store_)),
      db_(other.db_),
      stmt_(other.stmt_),
      in_use_(other.in_use_),
      bind_status_(std::move(other.bind_status_)) {
  other.stmt_ = nullptr;
  other.in_use_ = nullptr;
}

Statement& Statement::operator=(Statement&& other) noexcept {
  if (this != &other) {
    Release();
    store_ = std::move(other.store_);
    db_ = other.db_;
    stmt_ = other.stmt_;
    in_use_ = other.in_use_;
    bind_status_ = std::move(other.bind_status_);
    other.stmt_ = nullptr;
    other.in_use_ = nullptr;
  }
  return *this;
}

Statement::~Statement() { Release(); }

void Statement::Release() {
  if (stmt_ == nullptr) return;
  if (in_use_ == nullptr) {
    sqlite3_finalize(stmt_);
  } else {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
    *in_use_ = false;
  }
  stmt_ = nullptr;
  in_use_ = nullptr;
}

void Statement::Check(int rc, int i) {
  if (rc != SQLITE_OK && bind_status_.ok()) {
    bind_status_ = SqliteError(store_, db_, rc, absl::StrCat("bind ?", i, " of ", sql()));
  }
}

Statement& Statement::Bind(int i, int64_t value) {
  Check(sqlite3_bind_int64(stmt_, i, value), i);
  return *this;
}

Statement& Statement::Bind(int i, absl::string_view text) {
  Check(sqlite3_bind_text(stmt_, i, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT),
        i);
  return *this;
}

Statement& Statement::BindValue(int i, const Value& value) {
  if (const int64_t* n = std::get_if<int64_t>(&value)) return Bind(i, *n);
  return Bind(i, absl::string_view(std::get<std::string>(value)));
}

Statement& Statement::BindBlob(int i, absl::string_view bytes) {
  Check(sqlite3_bind_blob64(stmt_, i, bytes.data(), bytes.size(), SQLITE_TRANSIENT), i);
  return *this;
}

Statement& Statement::BindBlobNoCopy(int i, absl::string_view bytes) {
  Check(sqlite3_bind_blob64(stmt_, i, bytes.data(), bytes.size(), SQLITE_STATIC), i);
  return *this;
}

Statement& Statement::BindNull(int i) {
  Check(sqlite3_bind_null(stmt_, i), i);
  return *this;
}

Statement& Statement::BindOptional(int i, absl::optional<int64_t> value) {
  return value.has_value() ? Bind(i, *value) : BindNull(i);
}

Statement& Statement::BindAll(const std::vector<Value>& values, int first) {
  for (size_t k = 0; k < values.size(); ++k) BindValue(first + static_cast<int>(k), values[k]);
  return *this;
}

absl::StatusOr<bool> Statement::Step() {
  if (!bind_status_.ok()) return bind_status_;
  const int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return SqliteError(store_, db_, rc, sql());
}

absl::Status Statement::Run() {
  absl::StatusOr<bool> row = Step();
  return row.ok() ? absl::OkStatus() : row.status();
}

bool Statement::IsNull(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }

int64_t Statement::Int(int col) const { return sqlite3_column_int64(stmt_, col); }

absl::optional<int64_t> Statement::OptionalInt(int col) const {
  return IsNull(col) ? absl::nullopt : absl::optional<int64_t>(Int(col));
}

std::string Statement::Text(int col) const {
  const void* data = sqlite3_column_blob(stmt_, col);
  const int size = sqlite3_column_bytes(stmt_, col);
  return data == nullptr ? std::string() : std::string(static_cast<const char*>(data), size);
}

Value Statement::ValueAt(int col) const {
  if (sqlite3_column_type(stmt_, col) == SQLITE_INTEGER) return Int(col);
  return Text(col);
}

int Statement::ColumnCount() const { return sqlite3_column_count(stmt_); }

std::string Statement::sql() const {
  const char* text = stmt_ == nullptr ? nullptr : sqlite3_sql(stmt_);
  return text == nullptr ? std::string() : std::string(text);
}

// ---------------------------------------------------------------------------------------------
// Database

Database::Database(sqlite3* db, std::string path, DatabaseOptions options)
    : db_(db), path_(std::move(path)), options_(std::move(options)) {}

Database::~Database() {
  for (auto& [sql, cached] : cache_) sqlite3_finalize(cached.stmt);
  sqlite3_close_v2(db_);
}

absl::StatusOr<std::unique_ptr<Database>> Database::Open(const std::string& path,
                                                         DatabaseOptions options) {
  // Create a new file private before SQLite does (it would use the umask). O_EXCL, so that no
  // descriptor of an existing file is opened and closed here: closing one would drop the POSIX
  // locks another connection of this process holds on it.
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd >= 0) ::close(fd);
  sqlite3* raw = nullptr;
  const int rc = sqlite3_open_v2(
      path.c_str(), &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
      nullptr);
  if (rc != SQLITE_OK) {
    absl::Status status = SqliteError(options.store_name, raw, rc, absl::StrCat("open ", path));
    sqlite3_close_v2(raw);
    return status;
  }
  sqlite3_extended_result_codes(raw, 1);
  sqlite3_busy_timeout(raw, static_cast<int>(absl::ToInt64Milliseconds(options.busy_timeout)));
  return std::unique_ptr<Database>(new Database(raw, path, std::move(options)));
}

absl::Status Database::Error(int rc, absl::string_view what) const {
  return SqliteError(options_.store_name, db_, rc, what);
}

absl::Status Database::Exec(absl::string_view sql) {
  const std::string text(sql);
  char* error = nullptr;
  const int rc = sqlite3_exec(db_, text.c_str(), nullptr, nullptr, &error);
  sqlite3_free(error);
  return rc == SQLITE_OK ? absl::OkStatus() : Error(rc, sql);
}

absl::Status Database::EnableWal() {
  absl::StatusOr<Statement> q = PrepareOnce("PRAGMA journal_mode=WAL");
  if (!q.ok()) return q.status();
  absl::StatusOr<bool> row = q->Step();
  if (!row.ok()) return row.status();
  if (!*row || absl::AsciiStrToLower(q->Text(0)) != "wal") {
    return absl::FailedPreconditionError(absl::StrCat(
        options_.store_name, ": ", path_, ": cannot switch to WAL journal mode"));
  }
  return absl::OkStatus();
}

absl::StatusOr<Statement> Database::Prepare(absl::string_view sql) {
  auto it = cache_.find(sql);
  if (it == cache_.end()) {
    sqlite3_stmt* stmt = nullptr;
    const int rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()),
                                      SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
    if (rc != SQLITE_OK) return Error(rc, absl::StrCat("prepare: ", sql));
    it = cache_.emplace(std::string(sql), Cached{stmt, false}).first;
  }
  if (it->second.in_use) return PrepareOnce(sql);
  return Statement(options_.store_name, db_, it->second.stmt, &it->second.in_use);
}

absl::StatusOr<Statement> Database::PrepareOnce(absl::string_view sql) {
  sqlite3_stmt* stmt = nullptr;
  const int rc =
      sqlite3_prepare_v2(db_, sql.data(), static_cast<int>(sql.size()), &stmt, nullptr);
  if (rc != SQLITE_OK) return Error(rc, absl::StrCat("prepare: ", sql));
  return Statement(options_.store_name, db_, stmt, nullptr);
}

absl::StatusOr<int64_t> Database::UserVersion() {
  absl::StatusOr<Statement> q = PrepareOnce("PRAGMA user_version");
  if (!q.ok()) return q.status();
  absl::StatusOr<bool> row = q->Step();
  if (!row.ok()) return row.status();
  return *row ? q->Int(0) : 0;
}

absl::Status Database::SetUserVersion(int64_t version) {
  return Exec(absl::StrCat("PRAGMA user_version=", version));
}

absl::Status Database::NewerSchemaError(absl::string_view found, int64_t supported) const {
  return absl::FailedPreconditionError(absl::StrCat(options_.store_name, ": ", path_,
                                                    " has schema version ", found,
                                                    ", newer than this build's ", supported));
}

int64_t Database::Changes() const { return sqlite3_changes64(db_); }

bool Database::InTransaction() const { return sqlite3_get_autocommit(db_) == 0; }

// ---------------------------------------------------------------------------------------------
// Transaction

Transaction::~Transaction() {
  // A failed COMMIT may already have rolled back (then autocommit is on again).
  if (begun_ && !committed_ && db_->InTransaction()) db_->Exec("ROLLBACK").IgnoreError();
}

absl::Status Transaction::Begin() {
  absl::Status status = db_->Exec("BEGIN IMMEDIATE");
  begun_ = status.ok();
  return status;
}

absl::Status Transaction::Commit() {
  absl::Status status = db_->Exec("COMMIT");
  committed_ = status.ok();
  return status;
}

}  // namespace mailroom::sqlite
