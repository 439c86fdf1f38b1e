// Provides BacklogMonitor, which decides a sending role node's QUEUE_BACKLOG alarm about its
// own outbox: given the unsent mail (Outbox::Unsent) at each check, it raises the alarm
// (WARNING) once when more than the queued threshold wait or the oldest has waited longer
// than the age threshold, and clears it once the backlog is back under both. The first check
// after construction clears a stale alarm from before a restart when it finds the outbox under
// both thresholds. The caller runs the checks (RoleNode's housekeeping loop, every
// CheckInterval()); nothing here reads the outbox or starts a thread. Thread-safe.
#ifndef MAILROOM_COMMON_NODE_BACKLOG_MONITOR_H_
#define MAILROOM_COMMON_NODE_BACKLOG_MONITOR_H_

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "absl/types/optional.h"
#include "common/base/clock.h"
#include "common/node/alarm_reporter.h"
#include "common/outbox/outbox_types.h"
#include "proto/mailroom/config/v1/config.pb.h"

namespace mailroom {

struct BacklogThresholds {
  // More than this many unsent entries is a backlog.
  int64_t queued = 1000;
  // An oldest unsent entry queued longer ago than this is a backlog.
  absl::Duration age = absl::Hours(1);

  // DeliveryConfig.backlog_alarm_queued / backlog_alarm_age with their defaults (0 or unset
  // means 1000 and 1 hour).
  static BacklogThresholds FromConfig(const mailroom::config::v1::DeliveryConfig& delivery);
};

// Why the oldest unsent entry waits, in words, if the entry says: its wait reason (a permit,
// a paused mailbox, the broker), else its last attempt's failure. Empty if neither is known.
std::string WhyUnsent(const OutboxEntry& oldest);

class BacklogMonitor {
 public:
  // `clock` and `alarms` must outlive the monitor.
  BacklogMonitor(std::string node_name, BacklogThresholds thresholds, const Clock* clock,
                 AlarmReporter* alarms);

  // Evaluates the backlog `unsent` as of now and raises or clears QUEUE_BACKLOG as above.
  // `known_cause` says why mail may not go out when the oldest entry does not (e.g. "no
  // usable access token: ..."); may be empty.
  void Check(const UnsentSummary& unsent, absl::string_view known_cause = "");

  // Whether the last check found the backlog over a threshold.
  bool over() const;
  const BacklogThresholds& thresholds() const { return thresholds_; }
  // How often to check: a fifth of the age threshold, at least a second, at most a minute.
  absl::Duration CheckInterval() const;

  // The alarm's dedup key (scoped by the MnT to this node).
  static constexpr absl::string_view kDedupKey = "queue-backlog";

 private:
  void RaiseLocked(const UnsentSummary& unsent, absl::Duration oldest_age,
                   absl::string_view known_cause, absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string node_name_;
  const BacklogThresholds thresholds_;
  const Clock* const clock_;
  AlarmReporter* const alarms_;

  mutable absl::Mutex mu_;
  // What the MnT was last told: over (raised) or not (cleared); empty before the first check.
  absl::optional<bool> reported_over_ ABSL_GUARDED_BY(mu_);
};

}  // namespace mailroom

#endif  // MAILROOM_COMMON_NODE_BACKLOG_MONITOR_H_
