// Provides FakeClock, a Clock that moves only when a test says so. Waiters whose deadline
// the clock passes are released promptly, and a test can wait until every waiter has seen
// the current time (AwaitWaiters) instead of sleeping before it checks that nothing
// happened. Thread-safe.
#ifndef MAILROOM_COMMON_FAKE_CLOCK_H_
#define MAILROOM_COMMON_FAKE_CLOCK_H_

#include <cstdint>
#include <map>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/base/clock.h"

namespace mailroom {

class FakeClock final : public Clock {
 public:
  explicit FakeClock(absl::Time start = absl::FromUnixSeconds(1'800'000'000));

  absl::Time Now() const override;
  bool AwaitWithDeadline(absl::Mutex* mu, const absl::Condition& condition,
                         absl::Time deadline) const override;

  // Moves the clock forward (or, to test clock jumps, backward with a negative duration).
  void Advance(absl::Duration duration);
  void SetTime(absl::Time time);

  // Blocks (in real time, up to `timeout`) until exactly `waiters` threads are waiting on
  // this clock, each having looked at the time since it was last set, and their deadlines
  // not reached; returns whether that happened. After Advance(), this says that every
  // waiter has had its chance to wake, so a check that nothing happened is not a race.
  bool AwaitWaiters(int waiters, absl::Duration timeout) const;

 private:
  // Reads the time for the waiter `token`; forgets the waiter if its deadline has passed.
  absl::Time Observe(const void* token, absl::Time deadline) const;
  void Forget(const void* token) const;

  mutable absl::Mutex mu_;
  absl::Time now_ ABSL_GUARDED_BY(mu_);
  // Bumped whenever the time is set.
  int64_t epoch_ ABSL_GUARDED_BY(mu_) = 0;
  // Each waiting thread, with the epoch at which it last looked at the time.
  mutable std::map<const void*, int64_t> waiters_ ABSL_GUARDED_BY(mu_);
};

}  // namespace mailroom

#endif  // MAILROOM_COMMON_FAKE_CLOCK_H_
