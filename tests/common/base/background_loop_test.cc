#include "common/base/background_loop.h"

#include <atomic>

#include "gtest/gtest.h"
#include "tests/testing/fake_clock.h"

namespace mailroom {
namespace {

// Generous real-time bounds: they only matter when the test is already failing.
constexpr absl::Duration kPatience = absl::Seconds(30);

class BackgroundLoopTest : public ::testing::Test {
 protected:
  // Waits until the loop has finished `steps` steps and is back waiting on the fake clock.
  void Settle(const BackgroundLoop& loop, int64_t steps) {
    ASSERT_TRUE(loop.AwaitSteps(steps, kPatience));
    ASSERT_TRUE(clock_.AwaitWaiters(1, kPatience));
  }

  FakeClock clock_;
  std::atomic<int> calls_{0};
};

TEST_F(BackgroundLoopTest, RunsAtOnceThenWhenTheStepSaysSo) {
  BackgroundLoop loop(&clock_, [this] {
    ++calls_;
    return clock_.Now() + absl::Minutes(1);
  });
  loop.Start();
  Settle(loop, 1);
  EXPECT_EQ(calls_, 1);
  clock_.Advance(absl::Seconds(59));
  Settle(loop, 1);
  EXPECT_EQ(loop.steps(), 1);  // not due yet
  clock_.Advance(absl::Seconds(1));
  Settle(loop, 2);
  EXPECT_EQ(calls_, 2);
  loop.Stop();
  EXPECT_EQ(loop.steps(), 2);
}

TEST_F(BackgroundLoopTest, FirstDelayPostponesTheFirstStep) {
  BackgroundLoop loop(
      &clock_, [this] {
        ++calls_;
        return clock_.Now() + absl::Hours(1);
      },
      {absl::Hours(1)});
  loop.Start();
  ASSERT_TRUE(clock_.AwaitWaiters(1, kPatience));
  EXPECT_EQ(calls_, 0);
  clock_.Advance(absl::Minutes(59));
  ASSERT_TRUE(clock_.AwaitWaiters(1, kPatience));
  EXPECT_EQ(calls_, 0);
  clock_.Advance(absl::Minutes(1));
  Settle(loop, 1);
  EXPECT_EQ(calls_, 1);
}

TEST_F(BackgroundLoopTest, WakeRunsTheStepEarly) {
  BackgroundLoop loop(&clock_, [this] {
    ++calls_;
    return absl::InfiniteFuture();
  });
  loop.Start();
  Settle(loop, 1);
  clock_.Advance(absl::Hours(1000));
  Settle(loop, 1);
  EXPECT_EQ(calls_, 1);
  loop.Wake();
  Settle(loop, 2);
  EXPECT_EQ(calls_, 2);
}

TEST_F(BackgroundLoopTest, WakeDuringAStepIsNotLost) {
  BackgroundLoop* self = nullptr;
  BackgroundLoop loop(&clock_, [&] {
    // The first step is woken while it runs (as when new work arrives mid-step).
    if (++calls_ == 1) self->Wake();
    return absl::InfiniteFuture();
  });
  self = &loop;
  loop.Start();
  Settle(loop, 2);
  EXPECT_EQ(calls_, 2);
}

TEST_F(BackgroundLoopTest, PastDueRunsAgainAtOnce) {
  BackgroundLoop loop(&clock_, [this] {
    return ++calls_ < 5 ? absl::InfinitePast() : absl::InfiniteFuture();
  });
  loop.Start();
  Settle(loop, 5);
  EXPECT_EQ(calls_, 5);
}

TEST_F(BackgroundLoopTest, StopWaitsForTheStepAndCanRestart) {
  absl::Mutex mu;
  bool release = false;
  BackgroundLoop loop(&clock_, [&] {
    ++calls_;
    absl::MutexLock lock(&mu);
    mu.Await(absl::Condition(&release));
    return absl::InfiniteFuture();
  });
  loop.Start();
  loop.Start();  // already running: no second thread
  std::thread stopper([&] { loop.Stop(); });
  {
    absl::MutexLock lock(&mu);
    release = true;
  }
  stopper.join();
  EXPECT_LE(calls_, 1);
  loop.Stop();  // idempotent
  loop.Start();
  ASSERT_TRUE(loop.AwaitSteps(loop.steps() + 1, kPatience));
  loop.Stop();
}

TEST_F(BackgroundLoopTest, StopInterruptsAWait) {
  BackgroundLoop loop(&clock_, [this] {
    ++calls_;
    return clock_.Now() + absl::Hours(24);
  });
  loop.Start();
  Settle(loop, 1);
  loop.Stop();  // returns without the fake clock moving
  EXPECT_EQ(calls_, 1);
}

}  // namespace
}  // namespace mailroom
