// Provides OfflineAllowance: what a role node may send on its cached token while no leading
// broker answers it (issue 12), and the record of those sends until a leading broker has counted
// them (AcquireSendPermitRequest.offline_sends). The allowance begins only after `grace` without
// an answer from a leader, and is a sliding minute of `messages_per_minute` sends.
// Thread-safe. Its callers keep one order: the delivery worker's connection 0 alone takes,
// reports and marks reports counted, on its own thread, so what it reported is still at the
// front when the broker's answer comes.
#ifndef MAILROOM_COMMON_NODE_OFFLINE_ALLOWANCE_H_
#define MAILROOM_COMMON_NODE_OFFLINE_ALLOWANCE_H_

#include <cstddef>
#include <deque>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/base/clock.h"
#include "proto/mailroom/broker/v1/broker.pb.h"

namespace mailroom {

// AcquireSendPermitRequest.offline_sends' limit, which the broker enforces: 10 minutes of the
// default allowance. A node keeps at most this many uncounted sends; older ones count only
// against the day, and are dropped rather than block the report.
inline constexpr size_t kMaxOfflineSendsPerReport = 100;

class OfflineAllowance {
 public:
  // `clock` must outlive the allowance. `messages_per_minute` 0 never allows a send.
  OfflineAllowance(const Clock* clock, absl::Duration grace, int messages_per_minute,
                   absl::Duration report_interval);
  OfflineAllowance(const OfflineAllowance&) = delete;
  OfflineAllowance& operator=(const OfflineAllowance&) = delete;

  // A leading broker answered (granted or not), or the node started: it cannot know what the
  // cluster sent before it ran, so a start counts as an answer.
  void NoteLeaderAnswered();
  // Takes up to recipient_counts.size() sends from the allowance, the first ones of
  // `recipient_counts` (recipients per message), and keeps them to report. Returns how many;
  // 0 before `grace` has passed since a leader last answered.
  int Take(const std::vector<int>& recipient_counts);
  // The first send of the last Take() not yet ended has ended now (the server accepted or
  // refused it, or it was given up): it counts from now, as the server counts it, and so do
  // the ones still to go, which can reach the server no sooner. A send counted from its Take
  // let a leader's next grant reach the server within a minute of an offline send that arrived
  // later in its batch (broker_quorum_e2e: 21 in a minute against 20).
  void SendEnded();
  // The sends no broker has counted yet, oldest first, each with how long ago it was sent.
  std::vector<mailroom::broker::v1::OfflineSend> Uncounted() const;
  // A broker counted the first `reported` sends of the last Uncounted().
  void Counted(size_t reported);
  // Whether uncounted sends wait and a report is due; when true, the next one is due after
  // `report_interval`.
  bool ReportDue();
  // When the next report is due; InfiniteFuture() with nothing to report.
  absl::Time NextReportTime() const;

 private:
  struct Sent {
    absl::Time time;
    int recipients;
  };

  const Clock* const clock_;
  const absl::Duration grace_;
  const int messages_per_minute_;
  const absl::Duration report_interval_;

  mutable absl::Mutex mu_;
  absl::Time leader_answered_at_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  // Sends in the last minute (the allowance's window).
  std::deque<absl::Time> window_ ABSL_GUARDED_BY(mu_);
  std::deque<Sent> uncounted_ ABSL_GUARDED_BY(mu_);
  // How many of the newest sends (at the back of window_ and uncounted_) have not ended.
  size_t in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Time next_report_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
};

}  // namespace mailroom

#endif  // MAILROOM_COMMON_NODE_OFFLINE_ALLOWANCE_H_
