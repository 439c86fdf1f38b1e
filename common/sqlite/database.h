// Provides the one SQLite layer every durable store uses (the outbox, the MnT's alarm store,
// the PAN's account registry): Database (a connection with its cache of prepared
// statements), Statement (bind, step, read columns), Transaction (BEGIN IMMEDIATE ... COMMIT,
// rolled back unless committed), Where (SQL conditions with their bound values) and
// SqliteError, which maps SQLite result codes onto absl::Status.
//
// Errors. Every failure names the store ("outbox: ...") and the SQL statement it came from,
// then SQLite's description ("database is locked (database is locked)"). Failures caused by
// the environment (a lock held too long, I/O, a full disk, no memory, a WAL protocol race, a
// read-only file) are UNAVAILABLE: the caller may retry the same call. Anything else (a
// constraint, a malformed statement, a corrupt file) is INTERNAL.
//
// Not thread-safe: a Database and its Statements belong to one thread at a time (the stores
// serialize their calls with a mutex; the connection is opened SQLITE_OPEN_NOMUTEX).
#ifndef MAILROOM_COMMON_SQLITE_DATABASE_H_
#define MAILROOM_COMMON_SQLITE_DATABASE_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/optional.h"

struct sqlite3;
struct sqlite3_stmt;

namespace mailroom::sqlite {

// `store` prefixes the message ("outbox"); `what` says what failed (usually the SQL text).
// `db` may be null (then only the result code's description is given).
absl::Status SqliteError(absl::string_view store, sqlite3* db, int rc, absl::string_view what);

// A bound or read value: INTEGER or TEXT/BLOB.
using Value = std::variant<int64_t, std::string>;

// One execution of a prepared statement. Bind errors are kept and returned by Step(), so
// binds chain: q.Bind(1, id).Bind(2, now).Run(). When it goes out of scope a cached statement
// is reset (bindings dropped) for its next use, and a one-off statement is finalized.
// Movable, not copyable.
class Statement {
 public:
  Statement(Statement&& other) noexcept;
  Statement& operator=(Statement&& other) noexcept;
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  ~Statement();

  // Parameters are 1-based, as in SQLite.
  Statement& Bind(int i, int64_t value);
  Statement& Bind(int i, absl::string_view text);
  Statement& BindValue(int i, const Value& value);
  Statement& BindBlob(int i, absl::string_view bytes);
  // No copy (messages are large): the bytes must outlive this Statement.
  Statement& BindBlobNoCopy(int i, absl::string_view bytes);
  Statement& BindNull(int i);
  Statement& BindOptional(int i, absl::optional<int64_t> value);
  // Binds values[k] to parameter first + k.
  Statement& BindAll(const std::vector<Value>& values, int first = 1);

  // Steps once: true with a row, false when done.
  absl::StatusOr<bool> Step();
  // Runs a statement that returns no rows (or ignores them after the first step).
  absl::Status Run();

  bool IsNull(int col) const;
  int64_t Int(int col) const;
  absl::optional<int64_t> OptionalInt(int col) const;
  // TEXT or BLOB column as bytes ("" for NULL).
  std::string Text(int col) const;
  // INTEGER as int64_t, anything else as its bytes.
  Value ValueAt(int col) const;
  int ColumnCount() const;
  // The SQL text, for messages.
  std::string sql() const;

 private:
  friend class Database;
  Statement(absl::string_view store, sqlite3* db, sqlite3_stmt* stmt, bool* in_use);
  void Check(int rc, int i);
  void Release();

  std::string store_;
  sqlite3* db_;
  sqlite3_stmt* stmt_;
  // Non-null for a cached statement: cleared when this execution ends.
  bool* in_use_;
  absl::Status bind_status_;
};

struct DatabaseOptions {
  // Names the store in every message ("outbox", "alarm store", "pan registry").
  std::string store_name;
  // How long a statement waits for a lock held by another connection before failing
  // (UNAVAILABLE, "database is locked").
  absl::Duration busy_timeout = absl::Seconds(5);
};

class Database {
 public:
  // Opens (creating if needed) the database file at `path`. A file it creates is mode 0600
  // (SQLite gives its WAL and shared-memory files the same mode); an existing file keeps its
  // mode. Extended result codes are on.
  static absl::StatusOr<std::unique_ptr<Database>> Open(const std::string& path,
                                                        DatabaseOptions options);
  ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  // PRAGMA journal_mode=WAL, checked: FAILED_PRECONDITION if SQLite keeps another mode.
  absl::Status EnableWal();
  // Runs one or more statements without results (schema, pragmas, BEGIN/COMMIT).
  absl::Status Exec(absl::string_view sql);
  // A cached statement for a SQL text used again and again (prepared once, persistently). If
  // the cached one is in use (nested queries), a one-off copy is prepared instead.
  absl::StatusOr<Statement> Prepare(absl::string_view sql);
  // A one-off statement (SQL built at run time).
  absl::StatusOr<Statement> PrepareOnce(absl::string_view sql);

  // PRAGMA user_version, and setting it.
  absl::StatusOr<int64_t> UserVersion();
  absl::Status SetUserVersion(int64_t version);
  // FAILED_PRECONDITION "<store>: <path> has schema version <found>, newer than this build's
  // <supported>".
  absl::Status NewerSchemaError(absl::string_view found, int64_t supported) const;

  // Rows changed by the last INSERT, UPDATE or DELETE.
  int64_t Changes() const;
  bool InTransaction() const;
  const std::string& path() const { return path_; }
  const std::string& store_name() const { return options_.store_name; }
  absl::Status Error(int rc, absl::string_view what) const;
  // For SQLite calls this layer does not wrap (WAL hooks, checkpoints).
  sqlite3* raw() const { return db_; }

 private:
  Database(sqlite3* db, std::string path, DatabaseOptions options);

  struct Cached {
    sqlite3_stmt* stmt = nullptr;
    bool in_use = false;
  };

  sqlite3* db_;
  const std::string path_;
  const DatabaseOptions options_;
  std::map<std::string, Cached, std::less<>> cache_;
};

// BEGIN IMMEDIATE ... COMMIT; rolled back when it goes out of scope uncommitted (an error
// return between Begin and Commit leaves nothing behind).
class Transaction {
 public:
  explicit Transaction(Database* db) : db_(db) {}
  ~Transaction();
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;

  absl::Status Begin();
  // Durable on return (with synchronous=FULL), or failed and rolled back.
  absl::Status Commit();

 private:
  Database* db_;
  bool begun_ = false;
  bool committed_ = false;
};

// SQL conditions joined with AND, with the values of their "?" parameters in order.
struct Where {
  std::vector<std::string> clauses;
  std::vector<Value> values;

  void Add(std::string clause, std::vector<Value> bound = {}) {
    clauses.push_back(std::move(clause));
    for (Value& v : bound) values.push_back(std::move(v));
  }
  // "column IN (?, ...)" over integer-like items (enums); nothing when `items` is empty.
  template <typename T>
  void AddIn(absl::string_view column, const T& items) {
    if (items.empty()) return;
    std::vector<absl::string_view> marks;
    for (const auto& item : items) {
      marks.push_back("?");
      values.push_back(static_cast<int64_t>(item));
    }
    clauses.push_back(absl::StrCat(column, " IN (", absl::StrJoin(marks, ","), ")"));
  }
  // " WHERE a AND b", or "" without conditions.
  std::string Sql() const {
    return clauses.empty() ? "" : absl::StrCat(" WHERE ", absl::StrJoin(clauses, " AND "));
  }
};

}  // namespace mailroom::sqlite

#endif  // MAILROOM_COMMON_SQLITE_DATABASE_H_
