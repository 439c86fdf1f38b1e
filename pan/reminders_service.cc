#include "pan/reminders_service.h"

#include <initializer_list>

#include "common/rpc/rpc_auth.h"
#include "common/rpc/status_grpc.h"

namespace mailroom::pan {
namespace {

constexpr std::initializer_list<Role> kWriters = {Role::kPortal, Role::kAdmin};
constexpr std::initializer_list<Role> kReaders = {Role::kAdmin, Role::kPortal};
constexpr std::initializer_list<Role> kAdmins = {Role::kAdmin};

// Authorizes, then runs `call` (returning absl::StatusOr<Response>) into `*response`.
template <typename Response, typename Call>
grpc::Status Serve(grpc::ServerContext* context, std::initializer_list<Role> allowed,
                   const char* method, Response* response, Call call) {
  absl::StatusOr<PeerIdentity> peer = AuthorizeCaller(context, allowed, method);
  if (!peer.ok()) return ToGrpcStatus(peer.status());
  absl::StatusOr<Response> result = call();
  if (!result.ok()) return ToGrpcStatus(result.status());
  *response = *std::move(result);
  return grpc::Status::OK;
}

}  // namespace

grpc::Status RemindersService::UpsertGuestAccount(grpc::ServerContext* context,
                                                  const v1::UpsertGuestAccountRequest* request,
                                                  v1::UpsertGuestAccountResponse* response) {
  return Serve(context, kWriters, "UpsertGuestAccount", response,
               [&] { return reminders_->UpsertGuestAccount(*request); });
}

grpc::Status RemindersService::DeleteGuestAccount(grpc::ServerContext* context,
                                                  const v1::DeleteGuestAccountRequest* request,
                                                  v1::DeleteGuestAccountResponse* response) {
  return Serve(context, kWriters, "DeleteGuestAccount", response,
               [&] { return reminders_->DeleteGuestAccount(*request); });
}

grpc::Status RemindersService::UpsertUserAccount(grpc::ServerContext* context,
                                                 const v1::UpsertUserAccountRequest* request,
                                                 v1::UpsertUserAccountResponse* response) {
  return Serve(context, kWriters, "UpsertUserAccount", response,
               [&] { return reminders_->UpsertUserAccount(*request); });
}

grpc::Status RemindersService::DeleteUserAccount(grpc::ServerContext* context,
                                                 const v1::DeleteUserAccountRequest* request,
                                                 v1::DeleteUserAccountResponse* response) {
  return Serve(context, kWriters, "DeleteUserAccount", response,
               [&] { return reminders_->DeleteUserAccount(*request); });
}

grpc::Status RemindersService::ListAccounts(grpc::ServerContext* context,
                                            const v1::ListAccountsRequest* request,
                                            v1::ListAccountsResponse* response) {
  return Serve(context, kReaders, "ListAccounts", response,
               [&] { return reminders_->ListAccounts(*request); });
}

grpc::Status RemindersService::GetReminderSettings(grpc::ServerContext* context,
                                                   const v1::GetReminderSettingsRequest* request,
                                                   v1::GetReminderSettingsResponse* response) {
  return Serve(context, kReaders, "GetReminderSettings", response,
               [&] { return reminders_->GetReminderSettings(*request); });
}

grpc::Status RemindersService::SetReminderSettings(grpc::ServerContext* context,
                                                   const v1::SetReminderSettingsRequest* request,
                                                   v1::SetReminderSettingsResponse* response) {
  return Serve(context, kAdmins, "SetReminderSettings", response,
               [&] { return reminders_->SetReminderSettings(*request); });
}

grpc::Status RemindersService::ListPlannedReminders(grpc::ServerContext* context,
                                                    const v1::ListPlannedRemindersRequest* request,
                                                    v1::ListPlannedRemindersResponse* response) {
  return Serve(context, kAdmins, "ListPlannedReminders", response,
               [&] { return reminders_->ListPlannedReminders(*request); });
}

grpc::Status RemindersService::GetNotificationStatus(
    grpc::ServerContext* context, const v1::GetNotificationStatusRequest* request,
    v1::GetNotificationStatusResponse* response) {
  return Serve(context, kReaders, "GetNotificationStatus", response,
               [&] { return reminders_->GetNotificationStatus(*request); });
}

}  // namespace mailroom::pan
