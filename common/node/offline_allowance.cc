#include "common/node/offline_allowance.h"

#include <algorithm>

#include "common/base/proto_time.h"

namespace mailroom {

namespace bv1 = ::mailroom::broker::v1;

OfflineAllowance::OfflineAllowance(const Clock* clock, absl::Duration grace,
                                   int messages_per_minute, absl::Duration report_interval)
    : clock_(clock),
      grace_(grace),
      messages_per_minute_(messages_per_minute),
      report_interval_(report_interval) {}

void OfflineAllowance::NoteLeaderAnswered() {
  absl::MutexLock lock(&mu_);
  leader_answered_at_ = std::max(leader_answered_at_, clock_->Now());
}

int OfflineAllowance::Take(const std::vector<int>& recipient_counts) {
  const absl::Time now = clock_->Now();
  absl::MutexLock lock(&mu_);
  if (now - leader_answered_at_ < grace_) return 0;
  while (!window_.empty() && window_.front() + absl::Minutes(1) <= now) window_.pop_front();
  const int room = messages_per_minute_ - static_cast<int>(window_.size());
  const int taken = std::max(0, std::min(room, static_cast<int>(recipient_counts.size())));
  for (int i = 0; i < taken; ++i) {
    window_.push_back(now);
    if (uncounted_.size() >= kMaxOfflineSendsPerReport) uncounted_.pop_front();
    uncounted_.push_back(Sent{now, recipient_counts[i]});
  }
  in_flight_ = static_cast<size_t>(taken);
  return taken;
}

void OfflineAllowance::SendEnded() {
  const absl::Time now = clock_->Now();
  absl::MutexLock lock(&mu_);
  // Every send still in flight counts from now at the earliest; the window stays in order.
  for (size_t i = std::min(in_flight_, window_.size()); i > 0; --i) {
    window_[window_.size() - i] = std::max(window_[window_.size() - i], now);
  }
  for (size_t i = std::min(in_flight_, uncounted_.size()); i > 0; --i) {
    Sent& sent = uncounted_[uncounted_.size() - i];
    sent.time = std::max(sent.time, now);
  }
  if (in_flight_ > 0) --in_flight_;
}

std::vector<bv1::OfflineSend> OfflineAllowance::Uncounted() const {
  const absl::Time now = clock_->Now();
  absl::MutexLock lock(&mu_);
  std::vector<bv1::OfflineSend> sends;
  for (const Sent& sent : uncounted_) {
    bv1::OfflineSend send;
    send.set_recipients(sent.recipients);
    ToProto(now - sent.time, send.mutable_sent_ago());
    sends.push_back(std::move(send));
  }
  return sends;
}

void OfflineAllowance::Counted(size_t reported) {
  absl::MutexLock lock(&mu_);
  uncounted_.erase(uncounted_.begin(),
                   uncounted_.begin() + std::min(reported, uncounted_.size()));
}

bool OfflineAllowance::ReportDue() {
  const absl::Time now = clock_->Now();
  absl::MutexLock lock(&mu_);
  if (uncounted_.empty() || now < next_report_) return false;
  next_report_ = now + report_interval_;
  return true;
}

absl::Time OfflineAllowance::NextReportTime() const {
  absl::MutexLock lock(&mu_);
  return uncounted_.empty() ? absl::InfiniteFuture() : next_report_;
}

}  // namespace mailroom
