#include "psn/psn_service.h"

#include "common/rpc/service_call.h"

// Who may call what is documented on the GuestNotifications service (psn.proto).
namespace mailroom::psn {

MAILROOM_FORWARD_UNARY_RPC(PsnService, v1, NotifySelfRegistration, kPortalOrAdmin, notifier_)
MAILROOM_FORWARD_UNARY_RPC(PsnService, v1, NotifySponsorCreatedAccounts, kPortalOrAdmin, notifier_)
MAILROOM_FORWARD_UNARY_RPC(PsnService, v1, Resend, kPortalOrAdmin, notifier_)
MAILROOM_FORWARD_UNARY_RPC(PsnService, v1, SendPasswordReset, kPortalOrAdmin, notifier_)
MAILROOM_FORWARD_UNARY_RPC(PsnService, v1, SendTestEmail, kPortalOrAdmin, notifier_)
MAILROOM_FORWARD_UNARY_RPC(PsnService, v1, GetNotificationStatus, kPortalOrAdmin, notifier_)
MAILROOM_FORWARD_UNARY_RPC(PsnService, v1, ListNotifications, kPortalOrAdmin, notifier_)

grpc::Status PsnService::GetGuestEmailSettings(grpc::ServerContext* context,
                                               const v1::GetGuestEmailSettingsRequest*,
                                               v1::GetGuestEmailSettingsResponse* response) {
  return ServeCall(context, {__func__, kPortalOrAdmin}, response,
                   [&] { return notifier_->GetGuestEmailSettings(); });
}

MAILROOM_FORWARD_UNARY_RPC(PsnService, v1, SetGuestEmailSettings, kAdminOnly, notifier_)
MAILROOM_FORWARD_UNARY_RPC(PsnService, v1, PutTemplate, kAdminOnly, notifier_)
MAILROOM_FORWARD_UNARY_RPC(PsnService, v1, GetTemplate, kPortalOrAdmin, notifier_)
MAILROOM_FORWARD_UNARY_RPC(PsnService, v1, ListTemplates, kPortalOrAdmin, notifier_)
MAILROOM_FORWARD_UNARY_RPC(PsnService, v1, DeleteTemplate, kAdminOnly, notifier_)

}  // namespace mailroom::psn
