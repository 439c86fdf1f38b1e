// The scheduler thread on a FakeClock: it sends a reminder when the fake clock reaches its due
// time (not before), re-arms when an upsert plans an earlier one, rescans at the scan interval
// after a clock jump, and stops promptly.
#include "pan/reminder_scheduler.h"

#include "absl/time/clock.h"
#include "tests/testing/fake_clock.h"
#include "common/base/logging.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/pan/pan_fixtures.h"

namespace mailroom::pan {
namespace {

using ::mailroom::pan::testing::FreshTestDir;
using ::mailroom::pan::testing::Guest;
using ::mailroom::pan::testing::SettingsWithLeads;

constexpr absl::Duration kDay = absl::Hours(24);

class ReminderSchedulerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Logging::SetDefaultLevel(LogLevel::kOff);
    const std::string dir = FreshTestDir();
    registry_ = *AccountRegistry::Open(dir + "/pan.db");
    ASSERT_TRUE(registry_->InitSettings(SettingsWithLeads({3, 1}, {}), clock_.Now()).ok());
    OutboxOptions options;
    options.node_name = "pan1";
    outbox_ = *Outbox::Open(dir + "/outbox.db", &clock_, options);
    reminders_ =
        std::make_unique<Reminders>(registry_.get(), outbox_.get(), &clock_, RemindersOptions());
    ReminderScheduler::Options scheduler_options;
    scheduler_options.scan_interval = absl::Minutes(10);
    scheduler_ = std::make_unique<ReminderScheduler>(reminders_.get(), &clock_, scheduler_options);
    reminders_->SetChangeCallback([this] { scheduler_->Wake(); });
    scheduler_->Start();
  }
  void TearDown() override {
    reminders_->SetChangeCallback(nullptr);
    scheduler_.reset();
    Logging::Reset();
  }

  int64_t QueuedCount() { return outbox_->Counts()->queued(); }

  // Waits (real time, bounded) until the scheduler has finished a scan that started after
  // this call, so assertions see everything due at the fake clock's current time.
  void AwaitScan() {
    const int64_t start = scheduler_->scans();
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    while (scheduler_->scans() < start + 2 && absl::Now() < deadline) {
      scheduler_->Wake();
      absl::SleepFor(absl::Milliseconds(5));
    }
    ASSERT_GE(scheduler_->scans(), start + 2) << "the scheduler did not scan";
  }

  void UpsertGuest(const std::string& id, absl::Time expire) {
    v1::UpsertGuestAccountRequest request;
    *request.mutable_account() = Guest(id, expire);
    ASSERT_TRUE(reminders_->UpsertGuestAccount(request).ok());
  }

  FakeClock clock_;
  std::unique_ptr<AccountRegistry> registry_;
  std::unique_ptr<Outbox> outbox_;
  std::unique_ptr<Reminders> reminders_;
  std::unique_ptr<ReminderScheduler> scheduler_;
};

TEST_F(ReminderSchedulerTest, SendsWhenTheFakeClockReachesTheDueTimeNotBefore) {
  const absl::Time expire = clock_.Now() + 10 * kDay;
  UpsertGuest("g1", expire);
  AwaitScan();
  EXPECT_EQ(QueuedCount(), 0);
  clock_.SetTime(expire - 3 * kDay - absl::Seconds(1));
  AwaitScan();
  EXPECT_EQ(QueuedCount(), 0);
  clock_.SetTime(expire - 3 * kDay);
  AwaitScan();
  EXPECT_EQ(QueuedCount(), 1);
  clock_.Advance(absl::Hours(1));
  AwaitScan();
  EXPECT_EQ(QueuedCount(), 1);
  clock_.SetTime(expire - kDay);
  AwaitScan();
  EXPECT_EQ(QueuedCount(), 2);
}

TEST_F(ReminderSchedulerTest, WakesByItselfAtTheDueTimeWithoutBeingPoked) {
  const absl::Time expire = clock_.Now() + 10 * kDay;
  UpsertGuest("g1", expire);
  AwaitScan();                        // the scheduler now sleeps until the due time (7 days ahead)
  clock_.SetTime(expire - 3 * kDay);  // FakeClock releases waiters whose deadline passed
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (QueuedCount() == 0 && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(5));
  EXPECT_EQ(QueuedCount(), 1);
}

TEST_F(ReminderSchedulerTest, AJumpBackAndForthSendsEachReminderOnce) {
  const absl::Time expire = clock_.Now() + 10 * kDay;
  UpsertGuest("g1", expire);
  clock_.SetTime(expire - 2 * kDay);
  AwaitScan();
  EXPECT_EQ(QueuedCount(), 1);
  clock_.SetTime(expire - 20 * kDay);
  AwaitScan();
  clock_.SetTime(expire - 2 * kDay);
  AwaitScan();
  EXPECT_EQ(QueuedCount(), 1);
  clock_.SetTime(expire - absl::Hours(1));
  AwaitScan();
  EXPECT_EQ(QueuedCount(), 2);
  clock_.SetTime(expire + 10 * kDay);
  AwaitScan();
  EXPECT_EQ(QueuedCount(), 2);
}

TEST_F(ReminderSchedulerTest, StopsPromptlyWhileWaiting) {
  AwaitScan();
  const absl::Time start = absl::Now();
  scheduler_->Stop();
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
}

}  // namespace
}  // namespace mailroom::pan
