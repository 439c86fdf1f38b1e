#include "pan/reminder_scheduler.h"

#include <algorithm>

#include "common/base/logging.h"

namespace mailroom::pan {

ReminderScheduler::ReminderScheduler(Reminders* reminders, const Clock* clock, Options options)
    : reminders_(reminders), clock_(clock), options_(options) {}

ReminderScheduler::~ReminderScheduler() { Stop(); }

void ReminderScheduler::Start() {
  absl::MutexLock lock(&mu_);
  if (thread_.joinable()) return;
  stopping_ = false;
  thread_ = std::thread([this] { Run(); });
}

void ReminderScheduler::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

void ReminderScheduler::Wake() {
  absl::MutexLock lock(&mu_);
  woken_ = true;
}

int64_t ReminderScheduler::scans() const {
  absl::MutexLock lock(&mu_);
  return scans_;
}

void ReminderScheduler::Run() {
  absl::Time next_purge = clock_->Now();
  for (;;) {
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) return;
      woken_ = false;
    }
    const absl::Time scan_time = clock_->Now();
    absl::StatusOr<Reminders::DispatchReport> report = reminders_->DispatchDue();
    if (!report.ok()) {
      MR_LOG(kError, kLogPan) << "reminder scan failed (retried at the next scan): "
                              << report.status().message();
    } else if (report->queued + report->skipped + report->waiting > 0) {
      MR_LOG(kDebug, kLogPan) << "reminder scan: " << report->queued << " queued, "
                              << report->skipped << " skipped, " << report->waiting
                              << " waiting for a From address";
    }
    const absl::Time now = clock_->Now();
    if (now >= next_purge) {
      absl::StatusOr<int64_t> purged = reminders_->Purge();
      if (purged.ok() && *purged > 0) {
        MR_LOG(kInfo, kLogPan) << "forgot " << *purged << " final reminder(s) past retention";
      }
      next_purge = now + options_.purge_interval;
    }
    absl::Time deadline = now + options_.scan_interval;
    absl::StatusOr<absl::optional<absl::Time>> next_due = reminders_->NextDueTime();
    // Reminders due before this scan started were handled, or wait for a From address, and
    // the scan interval paces their retries; one that fell due during the scan is looked at
    // again at once.
    if (next_due.ok() && next_due->has_value() && **next_due > scan_time) {
      deadline = std::min(deadline, **next_due);
    }
    absl::MutexLock lock(&mu_);
    ++scans_;
    auto wake = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_ || woken_; };
    clock_->AwaitWithDeadline(&mu_, absl::Condition(&wake), deadline);
  }
}

}  // namespace mailroom::pan
