// Provides PsnService, the GuestNotifications gRPC service: a thin layer that authorizes each
// call on the role in the caller's verified certificate (portals and admins send and read;
// only admins change settings and templates), hands the request to PsnNotifier, and converts
// absl::Status to grpc::Status in one place. Thread-safe.
#ifndef MAILROOM_PSN_PSN_SERVICE_H_
#define MAILROOM_PSN_PSN_SERVICE_H_

#include "common/rpc/service_call.h"
#include "proto/mailroom/psn/v1/psn.grpc.pb.h"
#include "psn/psn_notifier.h"

namespace mailroom::psn {

class PsnService final : public v1::GuestNotifications::Service {
 public:
  // `notifier` is not owned and must outlive the service.
  explicit PsnService(PsnNotifier* notifier) : notifier_(notifier) {}

  MAILROOM_UNARY_RPC(v1, NotifySelfRegistration);
  MAILROOM_UNARY_RPC(v1, NotifySponsorCreatedAccounts);
  MAILROOM_UNARY_RPC(v1, Resend);
  MAILROOM_UNARY_RPC(v1, SendPasswordReset);
  MAILROOM_UNARY_RPC(v1, SendTestEmail);
  MAILROOM_UNARY_RPC(v1, GetNotificationStatus);
  MAILROOM_UNARY_RPC(v1, ListNotifications);
  MAILROOM_UNARY_RPC(v1, GetGuestEmailSettings);
  MAILROOM_UNARY_RPC(v1, SetGuestEmailSettings);
  MAILROOM_UNARY_RPC(v1, PutTemplate);
  MAILROOM_UNARY_RPC(v1, GetTemplate);
  MAILROOM_UNARY_RPC(v1, ListTemplates);
  MAILROOM_UNARY_RPC(v1, DeleteTemplate);

 private:
  PsnNotifier* const notifier_;
};

}  // namespace mailroom::psn

#endif  // MAILROOM_PSN_PSN_SERVICE_H_
