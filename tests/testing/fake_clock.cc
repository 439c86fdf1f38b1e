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

absl::Time FakeClock::Observe(const void* token, absl::Time deadline) const {
  absl::MutexLock lock(&mu_);
  if (now_ >= deadline) {
    waiters_.erase(token);
  } else {
    waiters_[token] = epoch_;
  }
  return now_;
}

void FakeClock::Forget(const void* token) const {
  absl::MutexLock lock(&mu_);
  waiters_.erase(token);
}

bool FakeClock::AwaitWithDeadline(absl::Mutex* mu, const absl::Condition& condition,
                                  absl::Time deadline) const {
  const char token = 0;  // its address identifies this waiter
  while (!condition.Eval()) {
    if (Observe(&token, deadline) >= deadline) return false;
    mu->AwaitWithTimeout(condition, kPollInterval);
  }
  Forget(&token);
  return true;
}

void FakeClock::Advance(absl::Duration duration) {
  absl::MutexLock lock(&mu_);
  now_ += duration;
  ++epoch_;
}

void FakeClock::SetTime(absl::Time time) {
  absl::MutexLock lock(&mu_);
  now_ = time;
  ++epoch_;
}

bool FakeClock::AwaitWaiters(int waiters, absl::Duration timeout) const {
  struct Want {
    const FakeClock* self;
    size_t waiters;
  } want{this, static_cast<size_t>(waiters)};
  absl::MutexLock lock(&mu_);
  return mu_.AwaitWithTimeout(
      absl::Condition(
          +[](Want* w) ABSL_NO_THREAD_SAFETY_ANALYSIS {
            if (w->self->waiters_.size() != w->waiters) return false;
            for (const auto& [token, epoch] : w->self->waiters_) {
              if (epoch != w->self->epoch_) return false;
            }
            return true;
          },
          &want),
      timeout);
}

}  // namespace mailroom
