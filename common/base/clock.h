// Provides Clock, the one way mailroom logic reads time or waits for it, RealClock (the wall
// clock) and MonotonicClock (never jumps: for leases and fencing, which measure durations).
// Logic takes a Clock& in its constructor so tests can drive time with FakeClock
// (tests/testing/fake_clock.h) instead of sleeping. Implementations are thread-safe.
#ifndef MAILROOM_COMMON_CLOCK_H_
#define MAILROOM_COMMON_CLOCK_H_

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace mailroom {

class Clock {
 public:
  virtual ~Clock() = default;

  // The current time.
  virtual absl::Time Now() const = 0;

  // Blocks until `condition` holds or the clock reaches `deadline`, whichever is first.
  // `mu` must be held on entry and is held on return. Returns whether `condition` holds.
  // Waiting goes through the clock so that a fake clock can release waiters when a test
  // advances it.
  virtual bool AwaitWithDeadline(absl::Mutex* mu, const absl::Condition& condition,
                                 absl::Time deadline) const = 0;

  // Blocks until the clock reaches `deadline`.
  void SleepUntil(absl::Time deadline) const;
  void SleepFor(absl::Duration duration) const { SleepUntil(Now() + duration); }
};

// The system's wall clock.
class RealClock final : public Clock {
 public:
  absl::Time Now() const override;
  bool AwaitWithDeadline(absl::Mutex* mu, const absl::Condition& condition,
                         absl::Time deadline) const override;

  // A process-wide instance, for `main` to hand to the objects it wires.
  static RealClock& Get();
};

// A clock that never jumps (std::chrono::steady_clock): Now() is the UNIX epoch plus the
// steady clock's reading, so only differences between its times mean anything. Leader
// fencing (pan/broker/leader_election.h) measures its term on it, so that a step of the wall
// clock can neither lengthen nor shorten a term.
class MonotonicClock final : public Clock {
 public:
  absl::Time Now() const override;
  bool AwaitWithDeadline(absl::Mutex* mu, const absl::Condition& condition,
                         absl::Time deadline) const override;

  static MonotonicClock& Get();
};

}  // namespace mailroom

#endif  // MAILROOM_COMMON_CLOCK_H_
