// The summary scheduler thread on a fake clock: it sends the summary when the window ends
// (not before), wakes up for windows opened after it went to sleep, and purges old keys.
#include "mnt/summary_scheduler.h"

#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/mnt/alarm_test_env.h"

namespace mailroom::mnt {
namespace {

namespace cv1 = ::mailroom::common::v1;
namespace mv1 = ::mailroom::mnt::v1;
using ::mailroom::mnt::testing::AlarmTestEnv;
using ::mailroom::mnt::testing::Psn1;
using ::mailroom::mnt::testing::Request;

// Waits (in real time) until `done` holds; the scheduler runs on its own thread.
template <typename F>
bool Eventually(F done) {
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (!done()) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(5));
  }
  return true;
}

int Summaries(AlarmTestEnv& env) {
  int count = 0;
  for (const cv1::OutboxEntry& e : env.Entries()) {
    count += e.notification().kind() == cv1::NOTIFICATION_KIND_ALARM_SUMMARY;
  }
  return count;
}

TEST(SummarySchedulerTest, SendsTheSummaryWhenTheWindowEnds) {
  AlarmTestEnv env;
  SummaryScheduler scheduler(&env.manager(), &env.clock());
  scheduler.Start();
  // Raised after the scheduler went to sleep until its housekeeping time (an hour away): the
  // first suppressed repeat must bring its deadline forward to the window's end.
  ASSERT_TRUE(Eventually([&] { return scheduler.rounds() >= 1; }));
  const int64_t rounds = scheduler.rounds();
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(env.manager().RaiseAlarm(Request(absl::StrCat("k", i)), Psn1()).ok());
  }
  ASSERT_TRUE(Eventually([&] { return scheduler.rounds() > rounds; }));

  env.clock().Advance(absl::Minutes(4));
  // The scheduler has seen the new time and is waiting again: nothing was due.
  ASSERT_TRUE(env.clock().AwaitWaiters(1, absl::Seconds(10)));
  EXPECT_EQ(Summaries(env), 0);
  env.clock().Advance(absl::Minutes(1));
  EXPECT_TRUE(Eventually([&] { return Summaries(env) == 1; }));
  mv1::ListAlarmsRequest list;
  EXPECT_EQ(env.manager().ListAlarms(list)->alarms(0).suppressed_count(), 0);
  ASSERT_TRUE(env.clock().AwaitWaiters(1, absl::Seconds(10)));
  EXPECT_EQ(Summaries(env), 1);  // once only
  scheduler.Stop();
}

TEST(SummarySchedulerTest, HousekeepingPurgesOldKeys) {
  AlarmTestEnv env;
  ASSERT_TRUE(env.manager().RaiseAlarm(Request("old"), Psn1()).ok());
  SummaryScheduler scheduler(&env.manager(), &env.clock());
  scheduler.Start();
  env.clock().Advance(absl::Hours(24 * 8));
  mv1::GetNotificationStatusRequest by_key;
  by_key.set_idempotency_key("old");
  EXPECT_TRUE(Eventually([&] {
    return env.manager().GetNotificationStatus(by_key).status().code() ==
           absl::StatusCode::kNotFound;
  }));
}

TEST(SummarySchedulerTest, StopsPromptly) {
  AlarmTestEnv env;
  SummaryScheduler scheduler(&env.manager(), &env.clock());
  scheduler.Start();
  const absl::Time start = absl::Now();
  scheduler.Stop();
  scheduler.Stop();
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
}

}  // namespace
}  // namespace mailroom::mnt
