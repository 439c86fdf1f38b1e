// Provides RemindersService, the mailroom.pan.v1.Reminders gRPC service: a thin layer that
// authorizes each call on the role in the caller's verified certificate (as documented per
// RPC in pan.proto: portals and admins write accounts; admins and portals read; only admins
// change settings and list planned reminders), runs the call on Reminders, and converts the
// absl status to a gRPC status in one place (ToGrpcStatus). Thread-safe.
#ifndef MAILROOM_PAN_REMINDERS_SERVICE_H_
#define MAILROOM_PAN_REMINDERS_SERVICE_H_

#include <grpcpp/grpcpp.h>

#include "pan/reminders.h"
#include "proto/mailroom/pan/v1/pan.grpc.pb.h"

namespace mailroom::pan {

class RemindersService final : public v1::Reminders::Service {
 public:
  // `reminders` must outlive the service.
  explicit RemindersService(Reminders* reminders) : reminders_(reminders) {}

  grpc::Status UpsertGuestAccount(grpc::ServerContext* context,
                                  const v1::UpsertGuestAccountRequest* request,
                                  v1::UpsertGuestAccountResponse* response) override;
  grpc::Status DeleteGuestAccount(grpc::ServerContext* context,
                                  const v1::DeleteGuestAccountRequest* request,
                                  v1::DeleteGuestAccountResponse* response) override;
  grpc::Status UpsertUserAccount(grpc::ServerContext* context,
                                 const v1::UpsertUserAccountRequest* request,
                                 v1::UpsertUserAccountResponse* response) override;
  grpc::Status DeleteUserAccount(grpc::ServerContext* context,
                                 const v1::DeleteUserAccountRequest* request,
                                 v1::DeleteUserAccountResponse* response) override;
  grpc::Status ListAccounts(grpc::ServerContext* context, const v1::ListAccountsRequest* request,
                            v1::ListAccountsResponse* response) override;
  grpc::Status GetReminderSettings(grpc::ServerContext* context,
                                   const v1::GetReminderSettingsRequest* request,
                                   v1::GetReminderSettingsResponse* response) override;
  grpc::Status SetReminderSettings(grpc::ServerContext* context,
                                   const v1::SetReminderSettingsRequest* request,
                                   v1::SetReminderSettingsResponse* response) override;
  grpc::Status ListPlannedReminders(grpc::ServerContext* context,
                                    const v1::ListPlannedRemindersRequest* request,
                                    v1::ListPlannedRemindersResponse* response) override;
  grpc::Status GetNotificationStatus(grpc::ServerContext* context,
                                     const v1::GetNotificationStatusRequest* request,
                                     v1::GetNotificationStatusResponse* response) override;

 private:
  Reminders* const reminders_;
};

}  // namespace mailroom::pan

#endif  // MAILROOM_PAN_REMINDERS_SERVICE_H_
