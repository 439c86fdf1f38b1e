// Provides AlarmsService, the mailroom.mnt.v1.Alarms gRPC service: a thin layer over
// AlarmManager that authorizes each call on the role in the caller's verified certificate
// (RaiseAlarm: broker, PAN, PSN, MnT and admin, with source_node naming the caller itself;
// ClearAlarm: admin, or a node for its own alarms; everything else: admin) and converts
// absl::Status to grpc::Status in one place. Thread-safe.
#ifndef MAILROOM_MNT_ALARMS_SERVICE_H_
#define MAILROOM_MNT_ALARMS_SERVICE_H_

#include "common/rpc/service_call.h"
#include "mnt/alarm_manager.h"
#include "proto/mailroom/mnt/v1/mnt.grpc.pb.h"

namespace mailroom::mnt {

class AlarmsService final : public mailroom::mnt::v1::Alarms::Service {
 public:
  // `manager` must outlive the service.
  explicit AlarmsService(AlarmManager* manager) : manager_(manager) {}

  MAILROOM_UNARY_RPC(v1, RaiseAlarm);
  MAILROOM_UNARY_RPC(v1, ListAlarms);
  MAILROOM_UNARY_RPC(v1, ClearAlarm);
  MAILROOM_UNARY_RPC(v1, GetAlarmSettings);
  MAILROOM_UNARY_RPC(v1, SetAlarmSettings);
  MAILROOM_UNARY_RPC(v1, GetNotificationStatus);

 private:
  AlarmManager* const manager_;
};

}  // namespace mailroom::mnt

#endif  // MAILROOM_MNT_ALARMS_SERVICE_H_
