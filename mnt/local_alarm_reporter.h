// Provides LocalAlarmReporter, through which the MnT's own watchers (e.g. NodeWatch) raise
// and clear alarms straight into its AlarmManager, as the MnT node itself, without a gRPC
// round trip to its own address. Thread-safe (AlarmManager is).
#ifndef MAILROOM_MNT_LOCAL_ALARM_REPORTER_H_
#define MAILROOM_MNT_LOCAL_ALARM_REPORTER_H_

#include <string>

#include "common/node/alarm_reporter.h"
#include "mnt/alarm_manager.h"

namespace mailroom::mnt {

class LocalAlarmReporter final : public AlarmReporter {
 public:
  // `manager` must outlive the reporter.
  LocalAlarmReporter(AlarmManager* manager, std::string node_name);
  void Raise(RaiseAlarmRequest request) override;
  void Clear(ClearAlarmRequest request) override;

 private:
  AlarmManager* const manager_;
  const Caller self_;
};

}  // namespace mailroom::mnt

#endif  // MAILROOM_MNT_LOCAL_ALARM_REPORTER_H_
