#include "common/base/clock.h"

#include <chrono>

namespace mailroom {

void Clock::SleepUntil(absl::Time deadline) const {
  static const bool kNever = false;
  absl::Mutex mu;
  absl::MutexLock lock(&mu);
  AwaitWithDeadline(&mu, absl::Condition(&kNever), deadline);
}

absl::Time RealClock::Now() const { return absl::Now(); }

bool RealClock::AwaitWithDeadline(absl::Mutex* mu, const absl::Condition& condition,
                                  absl::Time deadline) const {
  return mu->AwaitWithDeadline(condition, deadline);
}

RealClock& RealClock::Get() {
  static RealClock* clock = new RealClock();
  return *clock;
}

absl::Time MonotonicClock::Now() const {
  return absl::UnixEpoch() + absl::FromChrono(std::chrono::steady_clock::now().time_since_epoch());
}

bool MonotonicClock::AwaitWithDeadline(absl::Mutex* mu, const absl::Condition& condition,
                                       absl::Time deadline) const {
  // absl's deadlines are wall-clock times; a timeout measured here is not.
  return mu->AwaitWithTimeout(condition, deadline - Now());
}

MonotonicClock& MonotonicClock::Get() {
  static MonotonicClock* clock = new MonotonicClock();
  return *clock;
}

}  // namespace mailroom
