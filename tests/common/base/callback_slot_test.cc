// The replaceable callback: runs what was set last, nothing once cleared, and a Set() waits
// for a Run() in progress, so that a cleared callback's owner may go away.
#include "common/base/callback_slot.h"

#include <atomic>
#include <thread>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace mailroom {
namespace {

TEST(CallbackSlot, RunsNothingUntilSet) {
  CallbackSlot slot;
  slot.Run();  // no callback: nothing happens
  int runs = 0;
  slot.Set([&runs] { ++runs; });
  slot.Run();
  slot.Run();
  EXPECT_EQ(runs, 2);
}

TEST(CallbackSlot, RunsTheLatestAndNothingOnceCleared) {
  CallbackSlot slot;
  int first = 0;
  int second = 0;
  slot.Set([&first] { ++first; });
  slot.Set([&second] { ++second; });
  slot.Run();
  slot.Set(nullptr);
  slot.Run();
  EXPECT_EQ(first, 0);
  EXPECT_EQ(second, 1);
}

TEST(CallbackSlot, ClearingWaitsForARunInProgress) {
  CallbackSlot slot;
  absl::Notification running;
  std::atomic<bool> finished{false};
  slot.Set([&] {
    running.Notify();
    absl::SleepFor(absl::Milliseconds(200));
    finished = true;
  });
  std::thread runner([&slot] { slot.Run(); });
  running.WaitForNotification();
  slot.Set(nullptr);
  // Had Set() not waited, the callback would still be sleeping.
  EXPECT_TRUE(finished);
  runner.join();
}

}  // namespace
}  // namespace mailroom
