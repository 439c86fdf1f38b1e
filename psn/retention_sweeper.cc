#include "psn/retention_sweeper.h"

#include "common/logging.h"

namespace mailroom::psn {

void RetentionSweeper::Start() {
  thread_ = std::thread([this] { Loop(); });
}

void RetentionSweeper::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

int RetentionSweeper::sweeps() const {
  absl::MutexLock lock(&mu_);
  return sweeps_;
}

void RetentionSweeper::Loop() {
  while (true) {
    absl::StatusOr<int64_t> purged = outbox_->Purge();
    if (!purged.ok()) {
      MR_LOG(kWarn, kLogOutbox) << "purging expired outbox entries failed: "
                                << purged.status().message();
    } else if (*purged > 0) {
      MR_LOG(kInfo, kLogOutbox) << "purged " << *purged << " outbox entries past retention";
    }
    absl::MutexLock lock(&mu_);
    ++sweeps_;
    if (clock_->AwaitWithDeadline(&mu_, absl::Condition(&stopping_), clock_->Now() + interval_)) {
      return;
    }
  }
}

}  // namespace mailroom::psn
