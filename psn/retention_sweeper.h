// Provides RetentionSweeper, a background thread that calls Outbox::Purge() at start and then
// at a fixed interval, so SENT and FAILED entries (and their idempotency keys) are dropped
// once DeliveryConfig.retention has passed, as the outbox promises; nothing else in a role
// node calls Purge(). Waits go through the injected clock. Thread-safe.
#ifndef MAILROOM_PSN_RETENTION_SWEEPER_H_
#define MAILROOM_PSN_RETENTION_SWEEPER_H_

#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/outbox.h"

namespace mailroom::psn {

class RetentionSweeper {
 public:
  // Neither owned; both must outlive the sweeper.
  RetentionSweeper(Outbox* outbox, const Clock* clock, absl::Duration interval)
      : outbox_(outbox), clock_(clock), interval_(interval) {}
  ~RetentionSweeper() { Stop(); }
  RetentionSweeper(const RetentionSweeper&) = delete;
  RetentionSweeper& operator=(const RetentionSweeper&) = delete;

  void Start();
  // Stops the thread and waits for it; idempotent.
  void Stop();
  // Number of sweeps done so far (for tests).
  int sweeps() const;

 private:
  void Loop();

  Outbox* const outbox_;
  const Clock* const clock_;
  const absl::Duration interval_;
  mutable absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  int sweeps_ ABSL_GUARDED_BY(mu_) = 0;
  std::thread thread_;
};

}  // namespace mailroom::psn

#endif  // MAILROOM_PSN_RETENTION_SWEEPER_H_
