// The alarm store over real SQLite files: alarms, idempotency records and settings persist
// across reopening; one active alarm per dedup key; due summaries; purge of old keys; file mode.
#include "mnt/alarm_store.h"

#include <sys/stat.h>

#include <cstdlib>

#include "absl/strings/str_cat.h"
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
  absl::optional<AlarmRecord> active = *store->FindActive("disk");
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
  EXPECT_EQ((*store->FindActive("disk"))->alarm.id(), "2");
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

}  // namespace
}  // namespace mailroom::mnt
