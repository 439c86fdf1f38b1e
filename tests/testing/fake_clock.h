// Provides FakeClock, a Clock that moves only when a test says so. Waiters whose deadline
// the clock passes are released promptly. Thread-safe.
#ifndef MAILROOM_COMMON_FAKE_CLOCK_H_
#define MAILROOM_COMMON_FAKE_CLOCK_H_

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

 private:
  mutable absl::Mutex mu_;
  absl::Time now_ ABSL_GUARDED_BY(mu_);
};

}  // namespace mailroom

#endif  // MAILROOM_COMMON_FAKE_CLOCK_H_
