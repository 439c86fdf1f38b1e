#include "psn/psn_service.h"

#include "common/rpc/rpc_auth.h"
#include "common/rpc/status_grpc.h"

namespace mailroom::psn {
namespace {

// Who may call what, as documented on the GuestNotifications service.
constexpr std::initializer_list<Role> kPortalOrAdmin = {Role::kPortal, Role::kAdmin};
constexpr std::initializer_list<Role> kAdminOnly = {Role::kAdmin};

}  // namespace

// Authorizes, runs `body` (an expression yielding absl::StatusOr<Response>), converts at the
// edge.
#define MR_PSN_CALL(allowed, body)                                                   \
  do {                                                                               \
    absl::StatusOr<PeerIdentity> peer = AuthorizeCaller(context, allowed, __func__); \
    if (!peer.ok()) return ToGrpcStatus(peer.status());                              \
    auto result = (body);                                                            \
    if (!result.ok()) return ToGrpcStatus(result.status());                          \
    *response = *std::move(result);                                                 \
    return grpc::Status::OK;                                                         \
  } while (0)

grpc::Status PsnService::NotifySelfRegistration(grpc::ServerContext* context,
                                                const v1::NotifySelfRegistrationRequest* request,
                                                v1::NotifySelfRegistrationResponse* response) {
  MR_PSN_CALL(kPortalOrAdmin, notifier_->NotifySelfRegistration(*request));
}

grpc::Status PsnService::NotifySponsorCreatedAccounts(
    grpc::ServerContext* context, const v1::NotifySponsorCreatedAccountsRequest* request,
    v1::NotifySponsorCreatedAccountsResponse* response) {
  MR_PSN_CALL(kPortalOrAdmin, notifier_->NotifySponsorCreatedAccounts(*request));
}

grpc::Status PsnService::Resend(grpc::ServerContext* context, const v1::ResendRequest* request,
                                v1::ResendResponse* response) {
  MR_PSN_CALL(kPortalOrAdmin, notifier_->Resend(*request));
}

grpc::Status PsnService::SendPasswordReset(grpc::ServerContext* context,
                                           const v1::SendPasswordResetRequest* request,
                                           v1::SendPasswordResetResponse* response) {
  MR_PSN_CALL(kPortalOrAdmin, notifier_->SendPasswordReset(*request));
}

grpc::Status PsnService::SendTestEmail(grpc::ServerContext* context,
                                       const v1::SendTestEmailRequest* request,
                                       v1::SendTestEmailResponse* response) {
  MR_PSN_CALL(kPortalOrAdmin, notifier_->SendTestEmail(*request));
}

grpc::Status PsnService::GetNotificationStatus(grpc::ServerContext* context,
                                               const v1::GetNotificationStatusRequest* request,
                                               v1::GetNotificationStatusResponse* response) {
  MR_PSN_CALL(kPortalOrAdmin, notifier_->GetNotificationStatus(*request));
}

grpc::Status PsnService::ListNotifications(grpc::ServerContext* context,
                                           const v1::ListNotificationsRequest* request,
                                           v1::ListNotificationsResponse* response) {
  MR_PSN_CALL(kPortalOrAdmin, notifier_->ListNotifications(*request));
}

grpc::Status PsnService::GetGuestEmailSettings(grpc::ServerContext* context,
                                               const v1::GetGuestEmailSettingsRequest*,
                                               v1::GetGuestEmailSettingsResponse* response) {
  MR_PSN_CALL(kPortalOrAdmin, absl::StatusOr<v1::GetGuestEmailSettingsResponse>(
                                  notifier_->GetGuestEmailSettings()));
}

grpc::Status PsnService::SetGuestEmailSettings(grpc::ServerContext* context,
                                               const v1::SetGuestEmailSettingsRequest* request,
                                               v1::SetGuestEmailSettingsResponse* response) {
  MR_PSN_CALL(kAdminOnly, notifier_->SetGuestEmailSettings(*request));
}

grpc::Status PsnService::PutTemplate(grpc::ServerContext* context,
                                     const v1::PutTemplateRequest* request,
                                     v1::PutTemplateResponse* response) {
  MR_PSN_CALL(kAdminOnly, notifier_->PutTemplate(*request));
}

grpc::Status PsnService::GetTemplate(grpc::ServerContext* context,
                                     const v1::GetTemplateRequest* request,
                                     v1::GetTemplateResponse* response) {
  MR_PSN_CALL(kPortalOrAdmin, notifier_->GetTemplate(*request));
}

grpc::Status PsnService::ListTemplates(grpc::ServerContext* context,
                                       const v1::ListTemplatesRequest* request,
                                       v1::ListTemplatesResponse* response) {
  MR_PSN_CALL(kPortalOrAdmin, notifier_->ListTemplates(*request));
}

grpc::Status PsnService::DeleteTemplate(grpc::ServerContext* context,
                                        const v1::DeleteTemplateRequest* request,
                                        v1::DeleteTemplateResponse* response) {
  MR_PSN_CALL(kAdminOnly, [&]() -> absl::StatusOr<v1::DeleteTemplateResponse> {
    if (absl::Status s = notifier_->DeleteTemplate(*request); !s.ok()) return s;
    return v1::DeleteTemplateResponse();
  }());
}

}  // namespace mailroom::psn
