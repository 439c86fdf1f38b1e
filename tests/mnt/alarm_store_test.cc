// The alarm store over real SQLite files: alarms, idempotency records and settings persist
// across reopening; one active alarm per dedup key; due summaries; purge of old keys; file mode.
#include "mnt/alarm_store.h"

#include <sqlite3.h>
#include <sys/stat.h>

#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "absl/types/variant.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mailroom::mnt {
namespace {

namespace mv1 = ::mailroom::mnt::v1;
using ::testing::SizeIs;

const absl::Time kNow = absl::FromUnixSeconds(1'800'000'000);

std::string Path() {
  const ::testing::TestInfo* info = ::testing::UnitTest::GetInstance()->current_test_info();
  const std::string dir = absl::StrCat(std::getenv("TEST_TMPDIR"), "/store-", info->name());
  EXPECT_EQ(std::system(absl::StrCat("rm -rf '", dir, "' && mkdir -p '", dir, "'").c_str()), 0);
  return absl::StrCat(dir, "/alarms.db");
}

std::unique_ptr<AlarmStore> Open(const std::string& path) {
  absl::StatusOr<std::unique_ptr<AlarmStore>> store = AlarmStore::Open(path);
  EXPECT_TRUE(store.ok()) << store.status();
  return store.ok() ? *std::move(store) : nullptr;
}

AlarmRecord Record(const std::string& id, const std::string& key, int64_t suppressed,
                   absl::Time window_end) {
  AlarmRecord record;
  record.alarm.set_id(id);
  record.alarm.set_dedup_key(key);
  record.alarm.set_state(mv1::ALARM_STATE_ACTIVE);
  record.alarm.set_type(mv1::ALARM_TYPE_GENERIC);
  record.alarm.set_source_node("psn1");
  record.alarm.set_text("text");
  record.alarm.mutable_last_occur_time()->set_seconds(absl::ToUnixSeconds(kNow));
  record.alarm.set_suppressed_count(suppressed);
  record.window_start = window_end - absl::Minutes(5);
  record.window_end = window_end;
  return record;
}

TEST(AlarmStoreTest, EverythingPersistsAcrossReopening) {
  const std::string path = Path();
  {
    std::unique_ptr<AlarmStore> store = Open(path);
    EXPECT_EQ(*store->NextAlarmId(), "1");
    RaiseRecord raise;
    raise.idempotency_key = "k1";
    raise.fingerprint = std::string(32, '\x01');
    raise.alarm_id = "1";
    raise.response.set_notification_id("mnt1/X");
    raise.create_time = kNow;
    ASSERT_TRUE(store->CommitRaise(Record("1", "disk", 2, kNow), raise).ok());
    mv1::AlarmSettings settings;
    settings.set_etag("abc");
    ASSERT_TRUE(store->SaveSettings(settings).ok());
  }
  struct stat info;
  ASSERT_EQ(stat(path.c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0600);

  std::unique_ptr<AlarmStore> store = Open(path);
  EXPECT_EQ(*store->NextAlarmId(), "2");
  absl::optional<AlarmRecord> active = *store->FindActive("psn1", "disk");
  ASSERT_TRUE(active.has_value());
  EXPECT_EQ(active->alarm.suppressed_count(), 2);
  EXPECT_EQ(active->window_end, kNow);
  EXPECT_EQ(active->window_start, kNow - absl::Minutes(5));
  absl::optional<RaiseRecord> raise = *store->FindRaise("k1");
  ASSERT_TRUE(raise.has_value());
  EXPECT_EQ(raise->fingerprint, std::string(32, '\x01'));
  EXPECT_EQ(raise->alarm_id, "1");
  EXPECT_EQ(raise->response.notification_id(), "mnt1/X");
  EXPECT_EQ(raise->create_time, kNow);
  EXPECT_EQ((*store->LoadSettings())->etag(), "abc");
  EXPECT_FALSE(store->Get("nope")->has_value());
  EXPECT_TRUE(store->Get("1")->has_value());
}

TEST(AlarmStoreTest, OneActiveAlarmPerDedupKeyClearedOnesStay) {
  std::unique_ptr<AlarmStore> store = Open(Path());
  ASSERT_TRUE(store->Save(Record("1", "disk", 0, absl::InfinitePast())).ok());
  EXPECT_FALSE(store->Save(Record("2", "disk", 0, absl::InfinitePast())).ok());
  AlarmRecord cleared = Record("1", "disk", 0, absl::InfinitePast());
  cleared.alarm.set_state(mv1::ALARM_STATE_CLEARED);
  ASSERT_TRUE(store->Save(cleared).ok());
  ASSERT_TRUE(store->Save(Record("2", "disk", 0, absl::InfinitePast())).ok());
  EXPECT_EQ((*store->FindActive("psn1", "disk"))->alarm.id(), "2");
  EXPECT_EQ(store->List(mv1::ListAlarmsRequest())->page().total_size(), 2);
}

TEST(AlarmStoreTest, DueSummariesAndNextSummaryTime) {
  std::unique_ptr<AlarmStore> store = Open(Path());
  EXPECT_EQ(*store->NextSummaryTime(), absl::nullopt);
  ASSERT_TRUE(store->Save(Record("1", "a", 3, kNow + absl::Minutes(2))).ok());
  ASSERT_TRUE(store->Save(Record("2", "b", 1, kNow + absl::Minutes(1))).ok());
  ASSERT_TRUE(store->Save(Record("3", "c", 0, kNow)).ok());  // nothing suppressed
  EXPECT_EQ(*store->NextSummaryTime(), kNow + absl::Minutes(1));
  EXPECT_THAT(*store->DueSummaries(kNow, 10), SizeIs(0));
  EXPECT_THAT(*store->DueSummaries(kNow + absl::Minutes(1), 10), SizeIs(1));
  const std::vector<AlarmRecord> due = *store->DueSummaries(kNow + absl::Minutes(3), 10);
  ASSERT_THAT(due, SizeIs(2));
  EXPECT_EQ(due[0].alarm.id(), "2");  // earliest window end first
  EXPECT_THAT(*store->DueSummaries(kNow + absl::Minutes(3), 1), SizeIs(1));
}

TEST(AlarmStoreTest, PurgeForgetsOldKeysOnly) {
  std::unique_ptr<AlarmStore> store = Open(Path());
  ASSERT_TRUE(store->Save(Record("1", "a", 0, kNow)).ok());
  for (int i = 0; i < 3; ++i) {
    RaiseRecord raise;
    raise.idempotency_key = absl::StrCat("k", i);
    raise.fingerprint = "f";
    raise.alarm_id = "1";
    raise.create_time = kNow + absl::Hours(i);
    ASSERT_TRUE(store->CommitRaise(Record("1", "a", 0, kNow), raise).ok());
  }
  EXPECT_EQ(*store->PurgeRaises(kNow + absl::Hours(2)), 2);
  EXPECT_FALSE(store->FindRaise("k1")->has_value());
  EXPECT_TRUE(store->FindRaise("k2")->has_value());
}

TEST(AlarmStoreTest, ARepeatedKeyFailsTheWholeCommit) {
  std::unique_ptr<AlarmStore> store = Open(Path());
  RaiseRecord raise;
  raise.idempotency_key = "k";
  raise.fingerprint = "f";
  raise.alarm_id = "1";
  ASSERT_TRUE(store->CommitRaise(Record("1", "a", 0, kNow), raise).ok());
  AlarmRecord changed = Record("1", "a", 5, kNow);
  EXPECT_FALSE(store->CommitRaise(changed, raise).ok());
  EXPECT_EQ((*store->Get("1"))->alarm.suppressed_count(), 0);  // rolled back
}

// An alarm store written by the code before common/sqlite (commit 139c7bb): the file is made
// with that code's pragmas, schema SQL and user_version, rows inserted with its INSERT
// statements through the raw SQLite API; this code opens it, reads and changes it.
TEST(AlarmStoreTest, AStoreWrittenByThePreviousCodeOpensAndWorks) {
  const std::string path = Path();
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                              nullptr),
              SQLITE_OK);
    const AlarmRecord old = Record("7", "disk", 2, kNow + absl::Minutes(1));
    mv1::RaiseAlarmResponse response;
    response.set_notification_id("mnt1/OLD");
    mv1::AlarmSettings settings;
    settings.set_etag("old-etag");
    const std::string script = absl::StrCat(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;", R"sql(
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
)sql",
        "PRAGMA user_version=1;");
    ASSERT_EQ(sqlite3_exec(db, script.c_str(), nullptr, nullptr, nullptr), SQLITE_OK)
        << sqlite3_errmsg(db);
    // Binds in order: ints as INTEGER, "t:..." as TEXT, anything else as BLOB.
    auto insert = [&](const char* sql, const std::vector<absl::variant<int64_t, std::string>>&
                                           values) {
      sqlite3_stmt* stmt = nullptr;
      ASSERT_EQ(sqlite3_prepare_v2(db, sql, -1, &stmt, nullptr), SQLITE_OK) << sqlite3_errmsg(db);
      for (size_t i = 0; i < values.size(); ++i) {
        const int index = static_cast<int>(i) + 1;
        if (const int64_t* n = absl::get_if<int64_t>(&values[i])) {
          sqlite3_bind_int64(stmt, index, *n);
          continue;
        }
        const std::string& v = absl::get<std::string>(values[i]);
        if (v.rfind("t:", 0) == 0) {
          sqlite3_bind_text(stmt, index, v.data() + 2, static_cast<int>(v.size()) - 2,
                            SQLITE_TRANSIENT);
        } else {
          sqlite3_bind_blob(stmt, index, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
        }
      }
      ASSERT_EQ(sqlite3_step(stmt), SQLITE_DONE) << sqlite3_errmsg(db);
      sqlite3_finalize(stmt);
    };
    insert("INSERT INTO alarms(id, dedup_key, state, type, severity, source_node, last_occur_us, "
           "suppressed, window_start_us, window_end_us, alarm) VALUES(?,?,?,?,?,?,?,?,?,?,?)",
           {int64_t{7}, "t:" + old.alarm.dedup_key(), int64_t{old.alarm.state()},
            int64_t{old.alarm.type()}, int64_t{old.alarm.severity()},
            "t:" + old.alarm.source_node(), absl::ToUnixMicros(kNow), int64_t{2},
            absl::ToUnixMicros(old.window_start), absl::ToUnixMicros(old.window_end),
            old.alarm.SerializeAsString()});
    insert("INSERT INTO raises(idempotency_key, fingerprint, alarm_id, response, create_us) "
           "VALUES(?,?,?,?,?)",
           {std::string("t:old-key"), std::string(32, '\x02'), int64_t{7},
            response.SerializeAsString(), absl::ToUnixMicros(kNow)});
    insert("INSERT INTO settings(id, settings) VALUES(1, ?) "
           "ON CONFLICT(id) DO UPDATE SET settings = excluded.settings",
           {settings.SerializeAsString()});
    ASSERT_EQ(sqlite3_close(db), SQLITE_OK);
  }

  std::unique_ptr<AlarmStore> store = Open(path);
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(*store->NextAlarmId(), "8");
  absl::optional<AlarmRecord> active = *store->FindActive("psn1", "disk");
  ASSERT_TRUE(active.has_value());
  EXPECT_EQ(active->alarm.id(), "7");
  EXPECT_EQ(active->alarm.suppressed_count(), 2);
  EXPECT_EQ(active->window_end, kNow + absl::Minutes(1));
  absl::optional<RaiseRecord> raise = *store->FindRaise("old-key");
  ASSERT_TRUE(raise.has_value());
  EXPECT_EQ(raise->alarm_id, "7");
  EXPECT_EQ(raise->fingerprint, std::string(32, '\x02'));
  EXPECT_EQ(raise->response.notification_id(), "mnt1/OLD");
  EXPECT_EQ((*store->LoadSettings())->etag(), "old-etag");
  EXPECT_EQ(*store->NextSummaryTime(), kNow + absl::Minutes(1));
  ASSERT_THAT(*store->DueSummaries(kNow + absl::Minutes(1), 10), SizeIs(1));

  // Changes and new alarms beside the old one; listing pages across both.
  AlarmRecord cleared = *active;
  cleared.alarm.set_state(mv1::ALARM_STATE_CLEARED);
  ASSERT_TRUE(store->Save(cleared).ok());
  ASSERT_TRUE(store->Save(Record("8", "disk", 0, absl::InfinitePast())).ok());
  mv1::ListAlarmsRequest request;
  request.mutable_page()->set_page_size(1);
  absl::StatusOr<mv1::ListAlarmsResponse> page = store->List(request);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_EQ(page->page().total_size(), 2);
  ASSERT_THAT(page->alarms(), SizeIs(1));
  EXPECT_EQ(page->alarms(0).id(), "8");
  request.mutable_page()->set_page_token(page->page().next_page_token());
  page = store->List(request);
  ASSERT_TRUE(page.ok()) << page.status();
  ASSERT_THAT(page->alarms(), SizeIs(1));
  EXPECT_EQ(page->alarms(0).id(), "7");
  EXPECT_EQ(page->alarms(0).state(), mv1::ALARM_STATE_CLEARED);
  EXPECT_TRUE(page->page().next_page_token().empty());
  EXPECT_EQ(*store->PurgeRaises(kNow + absl::Seconds(1)), 1);
}

}  // namespace
}  // namespace mailroom::mnt
