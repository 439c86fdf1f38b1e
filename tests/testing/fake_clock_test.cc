#include "tests/testing/fake_clock.h"

#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mailroom {
namespace {

TEST(FakeClock, MovesOnlyWhenAdvanced) {
  FakeClock clock(absl::FromUnixSeconds(1000));
  EXPECT_EQ(clock.Now(), absl::FromUnixSeconds(1000));
  clock.Advance(absl::Minutes(5));
  EXPECT_EQ(clock.Now(), absl::FromUnixSeconds(1300));
  clock.Advance(absl::Seconds(-100));  // a clock jump backwards
  EXPECT_EQ(clock.Now(), absl::FromUnixSeconds(1200));
}

TEST(FakeClock, AwaitReturnsWhenConditionHolds) {
  FakeClock clock;
  absl::Mutex mu;
  bool ready = false;
  std::thread setter([&] {
    absl::MutexLock lock(&mu);
    ready = true;
  });
  absl::MutexLock lock(&mu);
  EXPECT_TRUE(clock.AwaitWithDeadline(&mu, absl::Condition(&ready), clock.Now() + absl::Hours(1)));
  mu.Unlock();
  setter.join();
  mu.Lock();
}

TEST(FakeClock, AwaitTimesOutOnlyWhenFakeTimePassesDeadline) {
  FakeClock clock;
  const absl::Time deadline = clock.Now() + absl::Hours(1);
  bool woke = false;
  std::thread waiter([&] {
    absl::Mutex mu;
    static const bool kNever = false;
    absl::MutexLock lock(&mu);
    EXPECT_FALSE(clock.AwaitWithDeadline(&mu, absl::Condition(&kNever), deadline));
    woke = true;
  });
  absl::SleepFor(absl::Milliseconds(30));  // real time passes, fake time does not
  clock.Advance(absl::Minutes(59));
  absl::SleepFor(absl::Milliseconds(30));
  clock.Advance(absl::Minutes(1));
  waiter.join();
  EXPECT_TRUE(woke);
  EXPECT_GE(clock.Now(), deadline);
}

TEST(RealClock, SleepForWaits) {
  RealClock& clock = RealClock::Get();
  const absl::Time start = clock.Now();
  clock.SleepFor(absl::Milliseconds(20));
  EXPECT_GE(clock.Now() - start, absl::Milliseconds(20));
}

}  // namespace
}  // namespace mailroom
