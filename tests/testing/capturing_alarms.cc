#include "tests/testing/capturing_alarms.h"

#include "absl/strings/str_cat.h"

namespace mailroom::testing {

void CapturingAlarms::Raise(RaiseAlarmRequest request) {
  absl::MutexLock lock(&mu);
  events.push_back(absl::StrCat("raise ", request.dedup_key(), " ",
                                mailroom::mnt::v1::AlarmSeverity_Name(request.severity())));
  raised.push_back(std::move(request));
}

void CapturingAlarms::Clear(ClearAlarmRequest request) {
  absl::MutexLock lock(&mu);
  events.push_back(absl::StrCat("clear ", request.dedup_key()));
  cleared.push_back(std::move(request));
}

std::vector<std::string> CapturingAlarms::Events() {
  absl::MutexLock lock(&mu);
  return events;
}

}  // namespace mailroom::testing
