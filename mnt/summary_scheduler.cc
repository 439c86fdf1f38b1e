#include "mnt/summary_scheduler.h"

#include <algorithm>

namespace mailroom::mnt {

SummaryScheduler::SummaryScheduler(AlarmManager* manager, const Clock* clock,
                                   SummarySchedulerOptions options)
    : BackgroundLoop(clock, [this] { return Round(); }), manager_(manager), options_(options) {
  manager_->SetWakeCallback([this] { Wake(); });
}

// The loop's thread runs Round(), which uses the members: it must end before they go.
SummaryScheduler::~SummaryScheduler() {
  Stop();
  manager_->SetWakeCallback(nullptr);
}

absl::Time SummaryScheduler::Round() {
  const AlarmManager::SummaryRound round = manager_->SendDueSummaries();
  const absl::Time now = clock()->Now();
  if (now >= next_housekeeping_) {
    manager_->Purge();
    next_housekeeping_ = now + options_.housekeeping_interval;
  }
  absl::Time deadline = next_housekeeping_;
  if (absl::optional<absl::Time> next = manager_->NextSummaryTime(); next.has_value()) {
    deadline = std::min(deadline, *next);
  }
  // A summary that failed to queue is still due: without this the loop would spin on it.
  if (round.failed > 0) deadline = std::max(deadline, now + options_.retry_delay);
  return deadline;
}

}  // namespace mailroom::mnt
