// Provides AlarmReporter, through which any node raises an alarm with the MnT service and
// clears one it raised itself once the condition is gone, and two implementations:
// MntAlarmReporter, which sends over gRPC (mutual TLS) from a background queue, in order, and
// retries until the MnT answers (each alarm carries an idempotency key, so a retry is never a
// second alarm; clearing is idempotent), and LoggingAlarmReporter for nodes with no MnT
// configured. Raise() and Clear() never block the caller. Thread-safe.
#ifndef MAILROOM_COMMON_ALARM_REPORTER_H_
#define MAILROOM_COMMON_ALARM_REPORTER_H_

#include <cstdint>
#include <deque>
#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "absl/synchronization/mutex.h"
#include "absl/types/optional.h"
#include "common/base/background_loop.h"
#include "common/base/backoff.h"
#include "common/base/clock.h"
#include "proto/mailroom/mnt/v1/mnt.grpc.pb.h"

namespace mailroom {

using ::mailroom::mnt::v1::ClearAlarmRequest;
using ::mailroom::mnt::v1::RaiseAlarmRequest;

class AlarmReporter {
 public:
  virtual ~AlarmReporter() = default;
  virtual void Raise(RaiseAlarmRequest request) = 0;
  // Clears this node's active alarm under `request.dedup_key()` (nothing if none is active).
  virtual void Clear(ClearAlarmRequest request) = 0;
  // Clear() for `source_node`'s alarm under `dedup_key`, saying why.
  void ClearOwn(std::string source_node, std::string dedup_key, std::string reason);
};

class LoggingAlarmReporter final : public AlarmReporter {
 public:
  void Raise(RaiseAlarmRequest request) override;
  void Clear(ClearAlarmRequest request) override;
};

class MntAlarmReporter final : public AlarmReporter {
 public:
  // At most `max_queued` alarms wait while the MnT is unreachable; beyond that the oldest
  // one not being sent at that moment is dropped (and logged, and counted in
  // mailroom_alarms_dropped_total).
  MntAlarmReporter(std::shared_ptr<grpc::Channel> channel, const Clock* clock,
                   size_t max_queued = 1000);
  ~MntAlarmReporter() override;

  void Raise(RaiseAlarmRequest request) override;
  void Clear(ClearAlarmRequest request) override;
  // Blocks until the queue is empty or `timeout` passes; for tests and shutdown.
  bool Flush(absl::Duration timeout);

 private:
  // The worker's step: sends the oldest queued alarm; returns when to send again.
  absl::Time SendOne();

  std::unique_ptr<mailroom::mnt::v1::Alarms::Stub> stub_;
  const Clock* clock_;
  const size_t max_queued_;
  struct Queued {
    uint64_t sequence;
    // Exactly one is set.
    absl::optional<RaiseAlarmRequest> raise;
    absl::optional<ClearAlarmRequest> clear;
    std::string Describe() const;
  };
  void Enqueue(Queued queued);

  absl::Mutex mu_;
  std::deque<Queued> queue_ ABSL_GUARDED_BY(mu_);
  uint64_t next_sequence_ ABSL_GUARDED_BY(mu_) = 1;
  // The alarm being sent (0: none): a full queue drops another, and once it is answered
  // exactly it leaves the queue, whatever else came and went meanwhile.
  uint64_t in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  // Failures to reach the MnT in a row; while it waits, new alarms do not cut it short.
  RetryTimer retry_ ABSL_GUARDED_BY(mu_);
  BackgroundLoop worker_;
};

}  // namespace mailroom

#endif  // MAILROOM_COMMON_ALARM_REPORTER_H_
