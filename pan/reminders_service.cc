#include "pan/reminders_service.h"

#include "common/rpc/service_call.h"

// Who may call what is documented per RPC in pan.proto: portals and admins write accounts
// and read; only admins change settings and list planned reminders.
namespace mailroom::pan {

grpc::Status RemindersService::UpsertGuestAccount(grpc::ServerContext* context,
                                                  const v1::UpsertGuestAccountRequest* request,
                                                  v1::UpsertGuestAccountResponse* response) {
  return ServeCall(context, {__func__, kPortalOrAdmin}, response,
                   [&] { return reminders_->UpsertGuestAccount(*request); });
}

grpc::Status RemindersService::DeleteGuestAccount(grpc::ServerContext* context,
                                                  const v1::DeleteGuestAccountRequest* request,
                                                  v1::DeleteGuestAccountResponse* response) {
  return ServeCall(context, {__func__, kPortalOrAdmin}, response,
                   [&] { return reminders_->DeleteGuestAccount(*request); });
}

grpc::Status RemindersService::UpsertUserAccount(grpc::ServerContext* context,
                                                 const v1::UpsertUserAccountRequest* request,
                                                 v1::UpsertUserAccountResponse* response) {
  return ServeCall(context, {__func__, kPortalOrAdmin}, response,
                   [&] { return reminders_->UpsertUserAccount(*request); });
}

grpc::Status RemindersService::DeleteUserAccount(grpc::ServerContext* context,
                                                 const v1::DeleteUserAccountRequest* request,
                                                 v1::DeleteUserAccountResponse* response) {
  return ServeCall(context, {__func__, kPortalOrAdmin}, response,
                   [&] { return reminders_->DeleteUserAccount(*request); });
}

grpc::Status RemindersService::ListAccounts(grpc::ServerContext* context,
                                            const v1::ListAccountsRequest* request,
                                            v1::ListAccountsResponse* response) {
  return ServeCall(context, {__func__, kPortalOrAdmin}, response,
                   [&] { return reminders_->ListAccounts(*request); });
}

grpc::Status RemindersService::GetReminderSettings(grpc::ServerContext* context,
                                                   const v1::GetReminderSettingsRequest* request,
                                                   v1::GetReminderSettingsResponse* response) {
  return ServeCall(context, {__func__, kPortalOrAdmin}, response,
                   [&] { return reminders_->GetReminderSettings(*request); });
}

grpc::Status RemindersService::SetReminderSettings(grpc::ServerContext* context,
                                                   const v1::SetReminderSettingsRequest* request,
                                                   v1::SetReminderSettingsResponse* response) {
  return ServeCall(context, {__func__, kAdminOnly}, response,
                   [&] { return reminders_->SetReminderSettings(*request); });
}

grpc::Status RemindersService::ListPlannedReminders(grpc::ServerContext* context,
                                                    const v1::ListPlannedRemindersRequest* request,
                                                    v1::ListPlannedRemindersResponse* response) {
  return ServeCall(context, {__func__, kAdminOnly}, response,
                   [&] { return reminders_->ListPlannedReminders(*request); });
}

grpc::Status RemindersService::GetNotificationStatus(
    grpc::ServerContext* context, const v1::GetNotificationStatusRequest* request,
    v1::GetNotificationStatusResponse* response) {
  return ServeCall(context, {__func__, kPortalOrAdmin}, response,
                   [&] { return reminders_->GetNotificationStatus(*request); });
}

}  // namespace mailroom::pan
