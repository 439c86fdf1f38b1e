#include "tests/testing/fake_clock.h"

namespace mailroom {

// Waiters hold their own mutex, not ours, so they cannot be signalled directly when the
// clock moves; they re-check the fake time at a short real-time interval instead.
constexpr absl::Duration kPollInterval = absl::Milliseconds(1);

FakeClock::FakeClock(absl::Time start) : now_(start) {}

absl::Time FakeClock::Now() const {
  absl::MutexLock lock(&mu_);
  return now_;
}

bool FakeClock::AwaitWithDeadline(absl::Mutex* mu, const absl::Condition& condition,
                                  absl::Time deadline) const {
  while (!condition.Eval()) {
    if (Now() >= deadline) return false;
    mu->AwaitWithTimeout(condition, kPollInterval);
  }
  return true;
}

void FakeClock::Advance(absl::Duration duration) {
  absl::MutexLock lock(&mu_);
  now_ += duration;
}

void FakeClock::SetTime(absl::Time time) {
  absl::MutexLock lock(&mu_);
  now_ = time;
}

}  // namespace mailroom
