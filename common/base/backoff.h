// Provides Backoff, the one exponential retry delay of mailroom: initial * 2^(failures - 1),
// capped, then spread by a +/- jitter fraction drawn from an injected source so that tests
// are deterministic; and RetryTimer, which keeps the consecutive-failure count and the time
// before which a caller should not try again, read from an injected Clock. Backoff is
// thread-safe; RetryTimer is not (callers guard it with their own lock).
#ifndef MAILROOM_COMMON_BASE_BACKOFF_H_
#define MAILROOM_COMMON_BASE_BACKOFF_H_

#include <functional>

#include "absl/base/thread_annotations.h"
#include "absl/random/random.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/base/clock.h"

namespace mailroom {

struct BackoffPolicy {
  // The delay after the first failure; it doubles with every further one.
  absl::Duration initial = absl::Seconds(1);
  // The delay stops doubling here.
  absl::Duration max = absl::Minutes(5);
  // Each delay is multiplied by a factor drawn uniformly from [1 - jitter, 1 + jitter];
  // 0 disables jitter.
  double jitter = 0;
  // Whether the jittered delay is capped at `max` again (the outbox's rule) or may exceed
  // it by the jitter (the token cache's rule, which keeps retries at the cap spread out).
  bool cap_after_jitter = false;
};

class Backoff {
 public:
  // Draws in [0, 1) for the jitter; an empty function means a real random source. Tests
  // pin it (0.5 gives no jitter).
  using RandomUnit = std::function<double()>;

  explicit Backoff(BackoffPolicy policy, RandomUnit random_unit = nullptr);

  // The delay after `failures` consecutive failures (1 after the first); 0 for none.
  absl::Duration Delay(int failures);

  const BackoffPolicy& policy() const { return policy_; }

 private:
  double DrawUnit();

  const BackoffPolicy policy_;
  const RandomUnit random_unit_;
  absl::Mutex mu_;
  absl::BitGen bitgen_ ABSL_GUARDED_BY(mu_);
};

class RetryTimer {
 public:
  // `clock` must outlive the timer.
  RetryTimer(const Clock* clock, BackoffPolicy policy, Backoff::RandomUnit random_unit = nullptr);

  // Counts a failure and returns the delay before the next attempt: the backoff, or
  // `at_least` (e.g. a server's Retry-After) if that is longer.
  absl::Duration RecordFailure(absl::Duration at_least = absl::ZeroDuration());
  // Forgets the failures: the next attempt may happen at once.
  void RecordSuccess();
  // Brings the next attempt forward to `at_most` if it was later (e.g. so that a retry still
  // happens before a credential in hand expires).
  void Shorten(absl::Time at_most);

  int consecutive_failures() const { return failures_; }
  // No attempt should start before this; InfinitePast after a success.
  absl::Time next_attempt() const { return next_attempt_; }
  // Whether it is too early for another attempt.
  bool Waiting() const { return clock_->Now() < next_attempt_; }

 private:
  const Clock* const clock_;
  Backoff backoff_;
  int failures_ = 0;
  absl::Time next_attempt_ = absl::InfinitePast();
};

}  // namespace mailroom

#endif  // MAILROOM_COMMON_BASE_BACKOFF_H_
