#include "common/base/backoff.h"

#include <algorithm>

namespace mailroom {

Backoff::Backoff(BackoffPolicy policy, RandomUnit random_unit)
    : policy_(policy), random_unit_(std::move(random_unit)) {}

double Backoff::DrawUnit() {
  if (random_unit_) return std::clamp(random_unit_(), 0.0, 1.0);
  absl::MutexLock lock(&mu_);
  return absl::Uniform(bitgen_, 0.0, 1.0);
}

absl::Duration Backoff::Delay(int failures) {
  if (failures <= 0) return absl::ZeroDuration();
  absl::Duration delay = policy_.initial;
  for (int i = 1; i < failures && delay < policy_.max; ++i) delay *= 2;
  delay = std::min(delay, policy_.max);
  if (policy_.jitter > 0) {
    delay = delay * (1.0 + policy_.jitter * (2.0 * DrawUnit() - 1.0));
    if (policy_.cap_after_jitter) delay = std::min(delay, policy_.max);
  }
  return delay;
}

RetryTimer::RetryTimer(const Clock* clock, BackoffPolicy policy, Backoff::RandomUnit random_unit)
    : clock_(clock), backoff_(policy, std::move(random_unit)) {}

absl::Duration RetryTimer::RecordFailure(absl::Duration at_least) {
  ++failures_;
  const absl::Duration wait = std::max(backoff_.Delay(failures_), at_least);
  next_attempt_ = clock_->Now() + wait;
  return wait;
}

void RetryTimer::RecordSuccess() {
  failures_ = 0;
  next_attempt_ = absl::InfinitePast();
}

void RetryTimer::Shorten(absl::Time at_most) {
  next_attempt_ = std::min(next_attempt_, at_most);
}

}  // namespace mailroom
