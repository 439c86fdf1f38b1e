#include "mnt/local_alarm_reporter.h"

#include <utility>

#include "common/base/logging.h"

namespace mailroom::mnt {

LocalAlarmReporter::LocalAlarmReporter(AlarmManager* manager, std::string node_name)
    : manager_(manager), self_{Role::kMnt, std::move(node_name)} {}

void LocalAlarmReporter::Raise(RaiseAlarmRequest request) {
  if (absl::Status status = manager_->RaiseAlarm(request, self_).status(); !status.ok()) {
    MR_LOG(kError, kLogMnt) << "cannot record the MnT's own alarm (" << status.message()
                            << "): " << request.text();
  }
}

void LocalAlarmReporter::Clear(ClearAlarmRequest request) {
  if (absl::Status status = manager_->ClearAlarm(request, self_).status(); !status.ok()) {
    MR_LOG(kError, kLogMnt) << "cannot clear the MnT's own alarm [" << request.dedup_key()
                            << "]: " << status.message();
  }
}

}  // namespace mailroom::mnt
