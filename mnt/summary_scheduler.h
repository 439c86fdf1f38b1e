// Provides SummaryScheduler, the MnT's background thread that sends alarm summaries when
// suppression windows end and does the housekeeping (forgetting expired idempotency keys,
// purging finished outbox entries). It sleeps on the injected Clock until the earliest window
// end, the next housekeeping time, or a wake-up from the manager when a window gets its first
// suppressed repeat, so a FakeClock drives it in tests. Thread-safe.
#ifndef MAILROOM_MNT_SUMMARY_SCHEDULER_H_
#define MAILROOM_MNT_SUMMARY_SCHEDULER_H_

#include <cstdint>

#include "absl/time/time.h"
#include "common/base/background_loop.h"
#include "common/base/clock.h"
#include "mnt/alarm_manager.h"

namespace mailroom::mnt {

struct SummarySchedulerOptions {
  // How often idempotency keys and finished outbox entries are purged.
  absl::Duration housekeeping_interval = absl::Hours(1);
  // How long to wait before trying again after a summary could not be queued.
  absl::Duration retry_delay = absl::Seconds(30);
};

// A BackgroundLoop whose step is a round: Start, Stop (returns once the current round is
// done; idempotent) and Wake (recompute the deadline now) are the loop's.
class SummaryScheduler : public BackgroundLoop {
 public:
  // `manager` and `clock` must outlive the scheduler. Registers itself as the manager's wake
  // callback.
  SummaryScheduler(AlarmManager* manager, const Clock* clock,
                   SummarySchedulerOptions options = SummarySchedulerOptions());
  ~SummaryScheduler();  // stops

  // Rounds run so far (for tests to wait on).
  int64_t rounds() const { return steps(); }

 private:
  // One round: sends due summaries, does the housekeeping if due; returns when to wake.
  absl::Time Round();

  AlarmManager* const manager_;
  const SummarySchedulerOptions options_;

  // Only the loop's thread touches it.
  absl::Time next_housekeeping_ = absl::InfinitePast();
};

}  // namespace mailroom::mnt

#endif  // MAILROOM_MNT_SUMMARY_SCHEDULER_H_
