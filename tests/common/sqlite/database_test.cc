// The SQLite layer over real files under TEST_TMPDIR: errors name the store and the SQL and
// are classified (environment → UNAVAILABLE, anything else → INTERNAL); transactions roll
// back unless committed; a lock held by another connection is UNAVAILABLE after the busy
// timeout; cached statements are reusable and safe to nest; new files are private.
#include "common/sqlite/database.h"

#include <sqlite3.h>
#include <sys/stat.h>

#include <cstdlib>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mailroom::sqlite {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::StartsWith;

std::string FreshPath() {
  const ::testing::TestInfo* info = ::testing::UnitTest::GetInstance()->current_test_info();
  const std::string dir = absl::StrCat(std::getenv("TEST_TMPDIR"), "/db-", info->name());
  EXPECT_EQ(std::system(absl::StrCat("rm -rf '", dir, "' && mkdir -p '", dir, "'").c_str()), 0);
  return dir + "/test.db";
}

std::unique_ptr<Database> MustOpen(const std::string& path,
                                   absl::Duration busy_timeout = absl::Seconds(5)) {
  DatabaseOptions options;
  options.store_name = "test store";
  options.busy_timeout = busy_timeout;
  absl::StatusOr<std::unique_ptr<Database>> db = Database::Open(path, std::move(options));
  EXPECT_TRUE(db.ok()) << db.status();
  if (!db.ok()) return nullptr;
  EXPECT_TRUE((*db)->EnableWal().ok());
  return *std::move(db);
}

int64_t CountRows(Database* db) {
  absl::StatusOr<Statement> q = db->Prepare("SELECT COUNT(*) FROM t");
  EXPECT_TRUE(q.ok()) << q.status();
  absl::StatusOr<bool> row = q->Step();
  EXPECT_TRUE(row.ok() && *row);
  return q->Int(0);
}

class DatabaseTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = FreshPath();
    db_ = MustOpen(path_);
    ASSERT_NE(db_, nullptr);
    ASSERT_TRUE(db_->Exec("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT UNIQUE)").ok());
  }

  std::string path_;
  std::unique_ptr<Database> db_;
};

TEST(SqliteErrorTest, EnvironmentalFailuresAreUnavailableOthersInternal) {
  for (int rc : {SQLITE_BUSY, SQLITE_LOCKED, SQLITE_FULL, SQLITE_IOERR, SQLITE_IOERR_FSYNC,
                 SQLITE_CANTOPEN, SQLITE_NOMEM, SQLITE_PROTOCOL, SQLITE_READONLY}) {
    EXPECT_EQ(SqliteError("s", nullptr, rc, "x").code(), absl::StatusCode::kUnavailable) << rc;
  }
  for (int rc : {SQLITE_CONSTRAINT, SQLITE_CONSTRAINT_UNIQUE, SQLITE_CORRUPT, SQLITE_ERROR,
                 SQLITE_MISMATCH, SQLITE_RANGE}) {
    EXPECT_EQ(SqliteError("s", nullptr, rc, "x").code(), absl::StatusCode::kInternal) << rc;
  }
  EXPECT_EQ(SqliteError("outbox", nullptr, SQLITE_FULL, "COMMIT").message(),
            "outbox: COMMIT: database or disk is full");
}

TEST_F(DatabaseTest, ErrorsNameTheStoreAndTheSql) {
  absl::StatusOr<Statement> bad = db_->Prepare("SELEC nonsense");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInternal);
  EXPECT_THAT(std::string(bad.status().message()),
              AllOf(StartsWith("test store: prepare: SELEC nonsense: "), HasSubstr("syntax")));

  ASSERT_TRUE(db_->Exec("INSERT INTO t (name) VALUES ('a')").ok());
  absl::StatusOr<Statement> insert = db_->Prepare("INSERT INTO t (name) VALUES (?)");
  ASSERT_TRUE(insert.ok());
  const absl::Status duplicate = insert->Bind(1, "a").Run();
  EXPECT_EQ(duplicate.code(), absl::StatusCode::kInternal);
  EXPECT_THAT(std::string(duplicate.message()),
              AllOf(StartsWith("test store: INSERT INTO t (name) VALUES (?): "),
                    HasSubstr("UNIQUE constraint failed: t.name")));

  const absl::Status exec = db_->Exec("DROP TABLE missing");
  EXPECT_THAT(std::string(exec.message()),
              AllOf(StartsWith("test store: DROP TABLE missing: "), HasSubstr("no such table")));
}

TEST_F(DatabaseTest, BindErrorsSurfaceAtStepAndNameTheParameter) {
  absl::StatusOr<Statement> q = db_->Prepare("SELECT name FROM t WHERE id = ?");
  ASSERT_TRUE(q.ok());
  const absl::Status status = q->Bind(1, int64_t{1}).Bind(5, "x").Run();
  EXPECT_EQ(status.code(), absl::StatusCode::kInternal);
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("bind ?5 of SELECT name FROM t WHERE id = ?"));
}

TEST_F(DatabaseTest, BindsAndReadsEveryKindOfValue) {
  ASSERT_TRUE(db_->Exec("CREATE TABLE v (i INTEGER, s TEXT, b BLOB, n INTEGER)").ok());
  const std::string blob("a\0b\n", 4);
  absl::StatusOr<Statement> insert = db_->Prepare("INSERT INTO v VALUES (?, ?, ?, ?)");
  ASSERT_TRUE(insert.ok());
  ASSERT_TRUE(insert->Bind(1, int64_t{-7})
                  .BindValue(2, Value(std::string("text")))
                  .BindBlob(3, blob)
                  .BindOptional(4, absl::nullopt)
                  .Run()
                  .ok());
  absl::StatusOr<Statement> q = db_->Prepare("SELECT i, s, b, n FROM v");
  ASSERT_TRUE(q.ok());
  ASSERT_TRUE(*q->Step());
  EXPECT_EQ(q->Int(0), -7);
  EXPECT_EQ(q->Text(1), "text");
  EXPECT_EQ(q->Text(2), blob);
  EXPECT_TRUE(q->IsNull(3));
  EXPECT_EQ(q->OptionalInt(3), absl::nullopt);
  EXPECT_EQ(q->ValueAt(0), Value(int64_t{-7}));
  EXPECT_EQ(q->ValueAt(1), Value(std::string("text")));
  EXPECT_EQ(q->ColumnCount(), 4);
  EXPECT_FALSE(*q->Step());
}

TEST_F(DatabaseTest, CachedStatementsAreResetForReuseAndSafeToNest) {
  ASSERT_TRUE(db_->Exec("INSERT INTO t (name) VALUES ('a'), ('b')").ok());
  constexpr char kSql[] = "SELECT name FROM t ORDER BY id";
  for (int round = 0; round < 2; ++round) {
    absl::StatusOr<Statement> outer = db_->Prepare(kSql);
    ASSERT_TRUE(outer.ok());
    ASSERT_TRUE(*outer->Step());
    EXPECT_EQ(outer->Text(0), "a");  // from the start again: reset after the last use
    // The same SQL while the cached statement is in use: a separate statement.
    absl::StatusOr<Statement> inner = db_->Prepare(kSql);
    ASSERT_TRUE(inner.ok());
    ASSERT_TRUE(*inner->Step());
    EXPECT_EQ(inner->Text(0), "a");
    ASSERT_TRUE(*outer->Step());
    EXPECT_EQ(outer->Text(0), "b");
  }
}

TEST_F(DatabaseTest, TransactionsRollBackUnlessCommitted) {
  auto insert_then = [&](bool fail) -> absl::Status {
    Transaction txn(db_.get());
    if (absl::Status s = txn.Begin(); !s.ok()) return s;
    if (absl::Status s = db_->Exec("INSERT INTO t (name) VALUES ('x')"); !s.ok()) return s;
    if (fail) return absl::InternalError("something after the insert failed");
    return txn.Commit();
  };
  EXPECT_FALSE(insert_then(/*fail=*/true).ok());
  EXPECT_FALSE(db_->InTransaction());
  EXPECT_EQ(CountRows(db_.get()), 0);
  EXPECT_TRUE(insert_then(/*fail=*/false).ok());
  EXPECT_EQ(CountRows(db_.get()), 1);
  // A failing statement inside the transaction: nothing of it stays either.
  {
    Transaction txn(db_.get());
    ASSERT_TRUE(txn.Begin().ok());
    ASSERT_TRUE(db_->Exec("INSERT INTO t (name) VALUES ('y')").ok());
    EXPECT_FALSE(db_->Exec("INSERT INTO t (name) VALUES ('x')").ok());  // duplicate
  }
  EXPECT_EQ(CountRows(db_.get()), 1);
  // Committed data is there for another connection.
  std::unique_ptr<Database> other = MustOpen(path_);
  EXPECT_EQ(CountRows(other.get()), 1);
}

TEST_F(DatabaseTest, ALockHeldTooLongIsUnavailableNamingTheStatement) {
  std::unique_ptr<Database> other = MustOpen(path_, absl::Milliseconds(50));
  ASSERT_NE(other, nullptr);
  Transaction holder(db_.get());
  ASSERT_TRUE(holder.Begin().ok());
  {
    Transaction waiter(other.get());
    const absl::Status status = waiter.Begin();
    EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
    EXPECT_THAT(std::string(status.message()),
                AllOf(StartsWith("test store: BEGIN IMMEDIATE: "), HasSubstr("locked")));
  }
  // Readers are not blocked by a writer in WAL mode.
  EXPECT_EQ(CountRows(other.get()), 0);
  ASSERT_TRUE(holder.Commit().ok());
  Transaction waiter(other.get());
  EXPECT_TRUE(waiter.Begin().ok());
  EXPECT_TRUE(waiter.Commit().ok());
}

TEST_F(DatabaseTest, ChangesCountTheLastStatementsRows) {
  ASSERT_TRUE(db_->Exec("INSERT INTO t (name) VALUES ('a'), ('b'), ('c')").ok());
  EXPECT_EQ(db_->Changes(), 3);
  ASSERT_TRUE(db_->Exec("DELETE FROM t WHERE name != 'a'").ok());
  EXPECT_EQ(db_->Changes(), 2);
}

TEST_F(DatabaseTest, UserVersionAndTheNewerSchemaMessage) {
  EXPECT_EQ(*db_->UserVersion(), 0);
  ASSERT_TRUE(db_->SetUserVersion(3).ok());
  EXPECT_EQ(*db_->UserVersion(), 3);
  const absl::Status newer = db_->NewerSchemaError("3", 1);
  EXPECT_EQ(newer.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(newer.message(),
            absl::StrCat("test store: ", path_, " has schema version 3, newer than this build's 1"));
}

TEST(DatabaseOpenTest, ANewFileIsPrivateAndAnExistingOneKeepsItsMode) {
  const std::string path = FreshPath();
  MustOpen(path);
  struct stat info;
  ASSERT_EQ(stat(path.c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0600);
  ASSERT_EQ(chmod(path.c_str(), 0640), 0);
  MustOpen(path);
  ASSERT_EQ(stat(path.c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0640);
}

TEST(DatabaseOpenTest, AnUnopenableFileIsUnavailableNamingThePath) {
  DatabaseOptions options;
  options.store_name = "test store";
  absl::StatusOr<std::unique_ptr<Database>> db =
      Database::Open("/nonexistent-dir/x/test.db", options);
  EXPECT_EQ(db.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(db.status().message()),
              StartsWith("test store: open /nonexistent-dir/x/test.db: "));
}

TEST(WhereTest, BuildsConditionsWithTheirValuesInOrder) {
  Where where;
  EXPECT_EQ(where.Sql(), "");
  where.Add("a = ?", {int64_t{1}});
  where.AddIn("b", std::vector<int>{});
  where.AddIn("c", std::vector<int>{2, 3});
  where.Add("d = ?", {std::string("x")});
  EXPECT_EQ(where.Sql(), " WHERE a = ? AND c IN (?,?) AND d = ?");
  EXPECT_EQ(where.values, (std::vector<Value>{int64_t{1}, int64_t{2}, int64_t{3},
                                              std::string("x")}));
}

}  // namespace
}  // namespace mailroom::sqlite
