#include "mnt/summary_scheduler.h"

#include <algorithm>

namespace mailroom::mnt {

SummaryScheduler::SummaryScheduler(AlarmManager* manager, const Clock* clock,
                                   SummarySchedulerOptions options)
    : manager_(manager),
      clock_(clock),
      options_(options),
      loop_(clock, [this] { return Round(); }) {
  manager_->SetWakeCallback([this] { Wake(); });
}

SummaryScheduler::~SummaryScheduler() {
  Stop();
  manager_->SetWakeCallback(nullptr);
}

void SummaryScheduler::Start() {
  if (!stopped_) loop_.Start();
}

void SummaryScheduler::Stop() {
  stopped_ = true;
  loop_.Stop();
}

void SummaryScheduler::Wake() { loop_.Wake(); }

int64_t SummaryScheduler::rounds() const { return loop_.steps(); }

absl::Time SummaryScheduler::Round() {
  const AlarmManager::SummaryRound round = manager_->SendDueSummaries();
  const absl::Time now = clock_->Now();
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
