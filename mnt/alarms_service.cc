#include "mnt/alarms_service.h"

#include "common/base/status_macros.h"
#include "common/rpc/service_call.h"

namespace mailroom::mnt {
namespace {

// The roles that run mailroom processes and may raise (and clear their own) alarms.
constexpr std::initializer_list<Role> kAlarmRaisers = {Role::kBroker, Role::kPan, Role::kPsn,
                                                       Role::kMnt, Role::kAdmin};

Caller CallerOf(const PeerIdentity& peer) { return Caller{peer.role, peer.node_name}; }

}  // namespace

grpc::Status AlarmsService::RaiseAlarm(grpc::ServerContext* context,
                                       const v1::RaiseAlarmRequest* request,
                                       v1::RaiseAlarmResponse* response) {
  return ServeCall(context, {__func__, kAlarmRaisers, "source_node", request->source_node()},
                   response, [&](const PeerIdentity& peer) {
                     return manager_->RaiseAlarm(*request, CallerOf(peer));
                   });
}

MAILROOM_FORWARD_UNARY_RPC(AlarmsService, v1, ListAlarms, kAdminOnly, manager_)

grpc::Status AlarmsService::ClearAlarm(grpc::ServerContext* context,
                                       const v1::ClearAlarmRequest* request,
                                       v1::ClearAlarmResponse* response) {
  // Whether a node may clear this particular alarm depends on who raised it: the manager
  // checks that once it has found the alarm.
  return ServeCall(context, {__func__, kAlarmRaisers}, response, [&](const PeerIdentity& peer) {
    return manager_->ClearAlarm(*request, CallerOf(peer));
  });
}

grpc::Status AlarmsService::GetAlarmSettings(grpc::ServerContext* context,
                                             const v1::GetAlarmSettingsRequest*,
                                             v1::GetAlarmSettingsResponse* response) {
  return ServeCall(context, {__func__, kAdminOnly}, response, [&] {
    *response->mutable_settings() = manager_->GetSettings();
    return absl::OkStatus();
  });
}

grpc::Status AlarmsService::SetAlarmSettings(grpc::ServerContext* context,
                                             const v1::SetAlarmSettingsRequest* request,
                                             v1::SetAlarmSettingsResponse* response) {
  return ServeCall(context, {__func__, kAdminOnly}, response,
                   [&](const PeerIdentity& peer) -> absl::Status {
                     MR_ASSIGN_OR_RETURN(*response->mutable_settings(),
                                         manager_->SetSettings(*request, CallerOf(peer)));
                     return absl::OkStatus();
                   });
}

MAILROOM_FORWARD_UNARY_RPC(AlarmsService, v1, GetNotificationStatus, kAdminOnly, manager_)

}  // namespace mailroom::mnt
