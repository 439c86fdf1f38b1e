// Provides ReminderScheduler, the thread that sends reminders when they fall due: it runs
// Reminders::DispatchDue, then waits on the injected Clock until the next due time or the
// scan interval, whichever comes first (the interval bounds how late a reminder can be after
// a wall-clock jump or a missed wake-up), or until Wake() says the plan changed. Errors
// (e.g. a full disk) are logged and retried at the next scan; nothing is lost because due
// reminders stay PLANNED until they are queued. Thread-safe.
#ifndef MAILROOM_PAN_REMINDER_SCHEDULER_H_
#define MAILROOM_PAN_REMINDER_SCHEDULER_H_

#include <cstdint>

#include "absl/time/time.h"
#include "common/base/background_loop.h"
#include "common/base/clock.h"
#include "pan/reminders.h"

namespace mailroom::pan {

// A BackgroundLoop whose step is a scan: Start, Stop, and Wake (scan again now: the plan
// changed) are the loop's.
class ReminderScheduler : public BackgroundLoop {
 public:
  struct Options {
    // PanConfig.scan_interval: the longest sleep between two scans.
    absl::Duration scan_interval = absl::Seconds(60);
    // How often final reminders past the retention are purged.
    absl::Duration purge_interval = absl::Hours(6);
  };

  // `reminders` and `clock` must outlive the scheduler.
  ReminderScheduler(Reminders* reminders, const Clock* clock, Options options);
  ~ReminderScheduler();  // stops

  // Completed scans, for tests that wait for the scheduler to catch up with a fake clock.
  int64_t scans() const { return steps(); }

 private:
  // One scan: dispatches due reminders, purges if due; returns when to scan next.
  absl::Time Scan();

  Reminders* const reminders_;
  const Options options_;

  // Only the loop's thread touches it.
  absl::Time next_purge_ = absl::InfinitePast();
};

}  // namespace mailroom::pan

#endif  // MAILROOM_PAN_REMINDER_SCHEDULER_H_
