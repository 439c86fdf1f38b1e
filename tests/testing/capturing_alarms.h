// Provides CapturingAlarms, an AlarmReporter for unit tests that keeps what it is told: the
// raised alarms, the clear requests, and both in order as short lines. Thread-safe (a role's
// background threads raise and clear); read the members under `mu` when threads may still run.
#ifndef MAILROOM_TESTS_TESTING_CAPTURING_ALARMS_H_
#define MAILROOM_TESTS_TESTING_CAPTURING_ALARMS_H_

#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "common/node/alarm_reporter.h"

namespace mailroom::testing {

class CapturingAlarms : public AlarmReporter {
 public:
  void Raise(RaiseAlarmRequest request) override;
  void Clear(ClearAlarmRequest request) override;
  // "raise <dedup_key> <severity name>" and "clear <dedup_key>", in the order received.
  std::vector<std::string> Events();

  absl::Mutex mu;
  std::vector<RaiseAlarmRequest> raised;
  std::vector<ClearAlarmRequest> cleared;
  std::vector<std::string> events;
};

}  // namespace mailroom::testing

#endif  // MAILROOM_TESTS_TESTING_CAPTURING_ALARMS_H_
