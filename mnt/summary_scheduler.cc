#include "mnt/summary_scheduler.h"

#include <algorithm>

namespace mailroom::mnt {

SummaryScheduler::SummaryScheduler(AlarmManager* manager, const Clock* clock,
                                   SummarySchedulerOptions options)
    : manager_(manager), clock_(clock), options_(options) {
  manager_->SetWakeCallback([this] { Wake(); });
}

SummaryScheduler::~SummaryScheduler() {
  Stop();
  manager_->SetWakeCallback(nullptr);
}

void SummaryScheduler::Start() {
  absl::MutexLock lock(&mu_);
  if (thread_.joinable() || stopping_) return;
  thread_ = std::thread([this] { Run(); });
}

void SummaryScheduler::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

void SummaryScheduler::Wake() {
  absl::MutexLock lock(&mu_);
  ++wake_generation_;
}

int64_t SummaryScheduler::rounds() const {
  absl::MutexLock lock(&mu_);
  return rounds_;
}

void SummaryScheduler::Run() {
  absl::Time next_housekeeping = clock_->Now();
  while (true) {
    int64_t generation;
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) return;
      generation = wake_generation_;
    }
    const AlarmManager::SummaryRound round = manager_->SendDueSummaries();
    absl::Time now = clock_->Now();
    if (now >= next_housekeeping) {
      manager_->Purge();
      next_housekeeping = now + options_.housekeeping_interval;
    }
    absl::Time deadline = next_housekeeping;
    if (absl::optional<absl::Time> next = manager_->NextSummaryTime(); next.has_value()) {
      deadline = std::min(deadline, *next);
    }
    // A summary that failed to queue is still due: without this the loop would spin on it.
    if (round.failed > 0) deadline = std::max(deadline, now + options_.retry_delay);

    struct Waiter {
      SummaryScheduler* self;
      int64_t generation;
    } waiter{this, generation};
    absl::MutexLock lock(&mu_);
    ++rounds_;
    clock_->AwaitWithDeadline(&mu_,
                              absl::Condition(
                                  +[](Waiter* w) ABSL_NO_THREAD_SAFETY_ANALYSIS {
                                    return w->self->stopping_ ||
                                           w->self->wake_generation_ != w->generation;
                                  },
                                  &waiter),
                              deadline);
  }
}

}  // namespace mailroom::mnt
