// Provides AlarmsService, the mailroom.mnt.v1.Alarms gRPC service: a thin layer over
// AlarmManager that authorizes each call on the role in the caller's verified certificate
// (RaiseAlarm: broker, PAN, PSN, MnT and admin, with source_node naming the caller itself;
// ClearAlarm: admin, or a node for its own alarms; everything else: admin) and converts
// absl::Status to grpc::Status in one place. Thread-safe.
#ifndef MAILROOM_MNT_ALARMS_SERVICE_H_
#define MAILROOM_MNT_ALARMS_SERVICE_H_

#include "mnt/alarm_manager.h"
#include "proto/mailroom/mnt/v1/mnt.grpc.pb.h"

namespace mailroom::mnt {

class AlarmsService final : public mailroom::mnt::v1::Alarms::Service {
 public:
  // `manager` must outlive the service.
  explicit AlarmsService(AlarmManager* manager) : manager_(manager) {}

  grpc::Status RaiseAlarm(grpc::ServerContext* context, const v1::RaiseAlarmRequest* request,
                          v1::RaiseAlarmResponse* response) override;
  grpc::Status ListAlarms(grpc::ServerContext* context, const v1::ListAlarmsRequest* request,
                          v1::ListAlarmsResponse* response) override;
  grpc::Status ClearAlarm(grpc::ServerContext* context, const v1::ClearAlarmRequest* request,
                          v1::ClearAlarmResponse* response) override;
  grpc::Status GetAlarmSettings(grpc::ServerContext* context,
                                const v1::GetAlarmSettingsRequest* request,
                                v1::GetAlarmSettingsResponse* response) override;
  grpc::Status SetAlarmSettings(grpc::ServerContext* context,
                                const v1::SetAlarmSettingsRequest* request,
                                v1::SetAlarmSettingsResponse* response) override;
  grpc::Status GetNotificationStatus(grpc::ServerContext* context,
                                     const v1::GetNotificationStatusRequest* request,
                                     v1::GetNotificationStatusResponse* response) override;

 private:
  AlarmManager* const manager_;
};

}  // namespace mailroom::mnt

#endif  // MAILROOM_MNT_ALARMS_SERVICE_H_
