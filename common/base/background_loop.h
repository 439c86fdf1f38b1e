// Provides BackgroundLoop, the one "run a step, then wait until the next one is due or
// someone wakes us or Stop" thread of mailroom (schedulers, refreshers, housekeeping,
// senders). The wait goes through the injected Clock, so a FakeClock drives the loop in
// tests without real-time sleeps. A Wake() that arrives while a step runs is not lost: the
// step runs again at once. Thread-safe.
#ifndef MAILROOM_COMMON_BASE_BACKGROUND_LOOP_H_
#define MAILROOM_COMMON_BASE_BACKGROUND_LOOP_H_

#include <cstdint>
#include <functional>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/base/clock.h"

namespace mailroom {

class BackgroundLoop {
 public:
  // Does one round of work and returns when the next is due: absl::InfiniteFuture() for
  // "when woken", a time at or before now for "at once". Called on the loop's thread only,
  // without any lock of the loop's held, so it may call Wake().
  using Step = std::function<absl::Time()>;

  struct Options {
    // How long after Start() the first step runs; zero runs it at once.
    absl::Duration first_delay = absl::ZeroDuration();
  };

  // `clock` must outlive the loop.
  BackgroundLoop(const Clock* clock, Step step);
  BackgroundLoop(const Clock* clock, Step step, Options options);
  ~BackgroundLoop();  // stops
  BackgroundLoop(const BackgroundLoop&) = delete;
  BackgroundLoop& operator=(const BackgroundLoop&) = delete;

  // Starts the thread; does nothing if it runs. A stopped loop may be started again.
  void Start();
  // Returns once the thread has finished its current step and exited. Idempotent.
  void Stop();
  // Makes the thread run its step now, or as soon as the current one ends.
  void Wake();

  // Steps completed so far.
  int64_t steps() const;
  // Blocks (in real time) until at least `n` steps have completed or `timeout` passes;
  // returns whether they have. For tests that wait on the loop instead of sleeping.
  bool AwaitSteps(int64_t n, absl::Duration timeout) const;

 protected:
  // The clock the loop waits on, for a step that reads the time.
  const Clock* clock() const { return clock_; }

 private:
  void Run();

  const Clock* const clock_;
  const Step step_;
  const Options options_;

  mutable absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  int64_t wake_generation_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t steps_ ABSL_GUARDED_BY(mu_) = 0;
  std::thread thread_ ABSL_GUARDED_BY(mu_);
};

}  // namespace mailroom

#endif  // MAILROOM_COMMON_BASE_BACKGROUND_LOOP_H_
