#include "common/base/clock.h"

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

}  // namespace mailroom
