#include "pan/reminder_scheduler.h"

#include <algorithm>

#include "common/base/logging.h"

namespace mailroom::pan {

ReminderScheduler::ReminderScheduler(Reminders* reminders, const Clock* clock, Options options)
    : BackgroundLoop(clock, [this] { return Scan(); }), reminders_(reminders), options_(options) {}

// The loop's thread runs Scan(), which uses the members: it must end before they go.
ReminderScheduler::~ReminderScheduler() { Stop(); }

absl::Time ReminderScheduler::Scan() {
  const absl::Time scan_time = clock()->Now();
  absl::StatusOr<Reminders::DispatchReport> report = reminders_->DispatchDue();
  if (!report.ok()) {
    MR_LOG(kError, kLogPan) << "reminder scan failed (retried at the next scan): "
                            << report.status().message();
  } else if (report->queued + report->skipped + report->waiting > 0) {
    MR_LOG(kDebug, kLogPan) << "reminder scan: " << report->queued << " queued, "
                            << report->skipped << " skipped, " << report->waiting
                            << " waiting for a From address";
  }
  const absl::Time now = clock()->Now();
  if (now >= next_purge_) {
    absl::StatusOr<int64_t> purged = reminders_->Purge();
    if (purged.ok() && *purged > 0) {
      MR_LOG(kInfo, kLogPan) << "forgot " << *purged << " final reminder(s) past retention";
    }
    next_purge_ = now + options_.purge_interval;
  }
  absl::Time deadline = now + options_.scan_interval;
  absl::StatusOr<absl::optional<absl::Time>> next_due = reminders_->NextDueTime();
  // Reminders due before this scan started were handled, or wait for a From address, and
  // the scan interval paces their retries; one that fell due during the scan is looked at
  // again at once.
  if (next_due.ok() && next_due->has_value() && **next_due > scan_time) {
    deadline = std::min(deadline, **next_due);
  }
  return deadline;
}

}  // namespace mailroom::pan
