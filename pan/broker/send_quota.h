// Provides SendQuota, the broker's cluster-wide accounting of Exchange's per-mailbox limits
// (messages per rolling minute, recipients per rolling day, concurrent connections), handed
// out to role nodes as send permits so that N nodes together stay under the limits and the
// service never throttles them. Permits never block: a request is granted (a prefix of the
// messages asked for) or told how long to wait and why. Unused grants are refunded; grants
// whose lease runs out unreported count as sent (the safe assumption). Thread-safe.
#ifndef MAILROOM_PAN_BROKER_SEND_QUOTA_H_
#define MAILROOM_PAN_BROKER_SEND_QUOTA_H_

#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/base/clock.h"
#include "proto/mailroom/broker/v1/broker.pb.h"

namespace mailroom::broker {

struct SendLimitValues {
  int messages_per_minute = 30;
  int64_t recipients_per_day = 10000;
  int max_connections = 3;
  int max_recipients_per_message = 500;
  absl::Duration permit_lease = absl::Seconds(120);
  absl::Duration connection_idle_lease = absl::Seconds(60);
};

// The configured limits with zeros replaced by Exchange's defaults.
SendLimitValues ResolveSendLimits(const mailroom::broker::v1::SendLimits& limits);

class SendQuota {
 public:
  SendQuota(const Clock* clock, SendLimitValues limits);

  void SetLimits(SendLimitValues limits);

  // Requests are validated here (INVALID_ARGUMENT naming the field); a denial is an OK
  // response with granted = false.
  absl::StatusOr<mailroom::broker::v1::AcquireSendPermitResponse> Acquire(
      const std::string& mailbox, const std::string& node, const std::string& connection_id,
      const std::vector<int>& recipient_counts);

  absl::StatusOr<mailroom::broker::v1::ReportSendResultResponse> Report(
      const std::string& node, const std::string& permit_id,
      const std::vector<mailroom::broker::v1::SendResult>& results, bool connection_closed);

  absl::StatusOr<mailroom::broker::v1::ReleaseSendPermitResponse> Release(
      const std::string& node, const std::string& permit_id, const std::string& connection_id,
      bool connection_closed);

  // Pauses a mailbox (e.g. on a quota-exceeded reply) until `until`.
  void Pause(const std::string& mailbox, absl::Time until);
  // Ends a pause early; returns whether the mailbox was paused.
  bool Resume(const std::string& mailbox);
  // When the mailbox's pause ends; InfinitePast if it is not paused.
  absl::Time PausedUntil(const std::string& mailbox);

  std::vector<mailroom::broker::v1::MailboxQuota> Status(const std::string& mailbox_filter);

 private:
  struct Grant {
    int64_t id;
    absl::Time time;
    int recipients;
    std::string node;
  };
  struct Permit {
    std::string mailbox;
    std::string node;
    std::string connection_key;
    std::vector<Grant> grants;
    size_t reported = 0;
    absl::Time lease_end;
  };
  struct Connection {
    std::string node;
    absl::Time lease_end;
  };
  struct Mailbox {
    std::deque<Grant> minute;  // grants in the last minute
    std::deque<Grant> day;     // grants (recipients) in the last day
    std::map<std::string, Connection> connections;
    absl::Time paused_until = absl::InfinitePast();
  };

  void ExpireLocked(Mailbox& mailbox, absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RefundLocked(const Permit& permit, size_t from) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  static int64_t DayRecipients(const Mailbox& mailbox);

  const Clock* clock_;
  absl::Mutex mu_;
  SendLimitValues limits_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, Mailbox> mailboxes_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, Permit> permits_ ABSL_GUARDED_BY(mu_);
  int64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
};

}  // namespace mailroom::broker

#endif  // MAILROOM_PAN_BROKER_SEND_QUOTA_H_
