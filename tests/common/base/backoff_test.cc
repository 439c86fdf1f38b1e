#include "common/base/backoff.h"

#include "gtest/gtest.h"
#include "tests/testing/fake_clock.h"

namespace mailroom {
namespace {

TEST(Backoff, DoublesUpToTheCap) {
  Backoff backoff({absl::Seconds(1), absl::Seconds(10), 0}, [] { return 0.5; });
  EXPECT_EQ(backoff.Delay(0), absl::ZeroDuration());
  EXPECT_EQ(backoff.Delay(1), absl::Seconds(1));
  EXPECT_EQ(backoff.Delay(2), absl::Seconds(2));
  EXPECT_EQ(backoff.Delay(3), absl::Seconds(4));
  EXPECT_EQ(backoff.Delay(4), absl::Seconds(8));
  EXPECT_EQ(backoff.Delay(5), absl::Seconds(10));
  EXPECT_EQ(backoff.Delay(1000), absl::Seconds(10));  // no overflow
}

TEST(Backoff, JitterSpreadsByTheInjectedDraw) {
  double draw = 0;
  Backoff backoff({absl::Seconds(10), absl::Minutes(5), 0.2}, [&] { return draw; });
  EXPECT_EQ(backoff.Delay(1), absl::Seconds(8));
  draw = 0.5;
  EXPECT_EQ(backoff.Delay(1), absl::Seconds(10));
  draw = 1.0;
  EXPECT_EQ(backoff.Delay(1), absl::Seconds(12));
  draw = 7;  // out of range draws are clamped
  EXPECT_EQ(backoff.Delay(1), absl::Seconds(12));
}

TEST(Backoff, JitterAtTheCapExceedsItUnlessCappedAfter) {
  BackoffPolicy policy{absl::Seconds(10), absl::Seconds(10), 0.5};
  Backoff spread(policy, [] { return 1.0; });
  EXPECT_EQ(spread.Delay(3), absl::Seconds(15));
  policy.cap_after_jitter = true;
  Backoff capped(policy, [] { return 1.0; });
  EXPECT_EQ(capped.Delay(3), absl::Seconds(10));
  Backoff capped_low(policy, [] { return 0.0; });
  EXPECT_EQ(capped_low.Delay(3), absl::Seconds(5));
}

TEST(Backoff, RealRandomnessStaysInRange) {
  Backoff backoff({absl::Seconds(10), absl::Minutes(1), 0.2});
  for (int i = 0; i < 100; ++i) {
    const absl::Duration delay = backoff.Delay(1);
    EXPECT_GE(delay, absl::Seconds(8));
    EXPECT_LE(delay, absl::Seconds(12));
  }
}

TEST(RetryTimer, CountsFailuresAndHonoursALongerWait) {
  FakeClock clock;
  RetryTimer timer(&clock, {absl::Seconds(1), absl::Minutes(1), 0});
  EXPECT_FALSE(timer.Waiting());
  EXPECT_EQ(timer.next_attempt(), absl::InfinitePast());
  EXPECT_EQ(timer.RecordFailure(), absl::Seconds(1));
  EXPECT_EQ(timer.next_attempt(), clock.Now() + absl::Seconds(1));
  EXPECT_TRUE(timer.Waiting());
  clock.Advance(absl::Seconds(1));
  EXPECT_FALSE(timer.Waiting());
  EXPECT_EQ(timer.RecordFailure(), absl::Seconds(2));
  EXPECT_EQ(timer.RecordFailure(absl::Seconds(120)), absl::Seconds(120));  // Retry-After
  EXPECT_EQ(timer.consecutive_failures(), 3);
  EXPECT_EQ(timer.next_attempt(), clock.Now() + absl::Seconds(120));
  timer.RecordSuccess();
  EXPECT_EQ(timer.consecutive_failures(), 0);
  EXPECT_FALSE(timer.Waiting());
  EXPECT_EQ(timer.RecordFailure(), absl::Seconds(1));
}

}  // namespace
}  // namespace mailroom
