#include "mnt/alarms_service.h"

#include "common/rpc/rpc_auth.h"
#include "common/rpc/status_grpc.h"

namespace mailroom::mnt {
namespace {

// The roles that run mailroom processes and may raise (and clear their own) alarms.
constexpr std::initializer_list<Role> kAlarmRaisers = {Role::kBroker, Role::kPan, Role::kPsn,
                                                       Role::kMnt, Role::kAdmin};

Caller CallerOf(const PeerIdentity& peer) { return Caller{peer.role, peer.node_name}; }

// Stores a StatusOr's value in `*out` and converts its status at the edge.
template <typename T>
grpc::Status Reply(absl::StatusOr<T> result, T* out) {
  if (!result.ok()) return ToGrpcStatus(result.status());
  *out = *std::move(result);
  return grpc::Status::OK;
}

}  // namespace

grpc::Status AlarmsService::RaiseAlarm(grpc::ServerContext* context,
                                       const v1::RaiseAlarmRequest* request,
                                       v1::RaiseAlarmResponse* response) {
  absl::StatusOr<PeerIdentity> peer =
      AuthorizeCaller(context, kAlarmRaisers, "RaiseAlarm", request->source_node());
  if (!peer.ok()) return ToGrpcStatus(peer.status());
  return Reply(manager_->RaiseAlarm(*request, CallerOf(*peer)), response);
}

grpc::Status AlarmsService::ListAlarms(grpc::ServerContext* context,
                                       const v1::ListAlarmsRequest* request,
                                       v1::ListAlarmsResponse* response) {
  absl::StatusOr<PeerIdentity> peer = AuthorizeCaller(context, {Role::kAdmin}, "ListAlarms");
  if (!peer.ok()) return ToGrpcStatus(peer.status());
  return Reply(manager_->ListAlarms(*request), response);
}

grpc::Status AlarmsService::ClearAlarm(grpc::ServerContext* context,
                                       const v1::ClearAlarmRequest* request,
                                       v1::ClearAlarmResponse* response) {
  // Whether a node may clear this particular alarm depends on who raised it: the manager
  // checks that once it has found the alarm.
  absl::StatusOr<PeerIdentity> peer = AuthorizeCaller(context, kAlarmRaisers, "ClearAlarm");
  if (!peer.ok()) return ToGrpcStatus(peer.status());
  return Reply(manager_->ClearAlarm(*request, CallerOf(*peer)), response);
}

grpc::Status AlarmsService::GetAlarmSettings(grpc::ServerContext* context,
                                             const v1::GetAlarmSettingsRequest*,
                                             v1::GetAlarmSettingsResponse* response) {
  absl::StatusOr<PeerIdentity> peer = AuthorizeCaller(context, {Role::kAdmin}, "GetAlarmSettings");
  if (!peer.ok()) return ToGrpcStatus(peer.status());
  *response->mutable_settings() = manager_->GetSettings();
  return grpc::Status::OK;
}

grpc::Status AlarmsService::SetAlarmSettings(grpc::ServerContext* context,
                                             const v1::SetAlarmSettingsRequest* request,
                                             v1::SetAlarmSettingsResponse* response) {
  absl::StatusOr<PeerIdentity> peer = AuthorizeCaller(context, {Role::kAdmin}, "SetAlarmSettings");
  if (!peer.ok()) return ToGrpcStatus(peer.status());
  absl::StatusOr<v1::AlarmSettings> saved = manager_->SetSettings(*request, CallerOf(*peer));
  if (!saved.ok()) return ToGrpcStatus(saved.status());
  *response->mutable_settings() = *std::move(saved);
  return grpc::Status::OK;
}

grpc::Status AlarmsService::GetNotificationStatus(grpc::ServerContext* context,
                                                  const v1::GetNotificationStatusRequest* request,
                                                  v1::GetNotificationStatusResponse* response) {
  absl::StatusOr<PeerIdentity> peer =
      AuthorizeCaller(context, {Role::kAdmin}, "GetNotificationStatus");
  if (!peer.ok()) return ToGrpcStatus(peer.status());
  return Reply(manager_->GetNotificationStatus(*request), response);
}

}  // namespace mailroom::mnt
