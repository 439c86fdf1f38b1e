// Provides RemindersService, the mailroom.pan.v1.Reminders gRPC service: a thin layer that
// authorizes each call on the role in the caller's verified certificate (as documented per
// RPC in pan.proto: portals and admins write accounts; admins and portals read; only admins
// change settings and list planned reminders), runs the call on Reminders, and converts the
// absl status to a gRPC status in one place (ToGrpcStatus). Thread-safe.
#ifndef MAILROOM_PAN_REMINDERS_SERVICE_H_
#define MAILROOM_PAN_REMINDERS_SERVICE_H_

#include <grpcpp/grpcpp.h>

#include "common/rpc/service_call.h"
#include "pan/reminders.h"
#include "proto/mailroom/pan/v1/pan.grpc.pb.h"

namespace mailroom::pan {

class RemindersService final : public v1::Reminders::Service {
 public:
  // `reminders` must outlive the service.
  explicit RemindersService(Reminders* reminders) : reminders_(reminders) {}

  MAILROOM_UNARY_RPC(v1, UpsertGuestAccount);
  MAILROOM_UNARY_RPC(v1, DeleteGuestAccount);
  MAILROOM_UNARY_RPC(v1, UpsertUserAccount);
  MAILROOM_UNARY_RPC(v1, DeleteUserAccount);
  MAILROOM_UNARY_RPC(v1, ListAccounts);
  MAILROOM_UNARY_RPC(v1, GetReminderSettings);
  MAILROOM_UNARY_RPC(v1, SetReminderSettings);
  MAILROOM_UNARY_RPC(v1, ListPlannedReminders);
  MAILROOM_UNARY_RPC(v1, GetNotificationStatus);

 private:
  Reminders* const reminders_;
};

}  // namespace mailroom::pan

#endif  // MAILROOM_PAN_REMINDERS_SERVICE_H_
