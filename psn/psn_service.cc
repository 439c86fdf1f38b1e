#include "psn/psn_service.h"

#include "common/rpc/service_call.h"

// Who may call what is documented on the GuestNotifications service (psn.proto).
namespace mailroom::psn {

grpc::Status PsnService::NotifySelfRegistration(grpc::ServerContext* context,
                                                const v1::NotifySelfRegistrationRequest* request,
                                                v1::NotifySelfRegistrationResponse* response) {
  return ServeCall(context, {__func__, kPortalOrAdmin}, response,
                   [&] { return notifier_->NotifySelfRegistration(*request); });
}

grpc::Status PsnService::NotifySponsorCreatedAccounts(
    grpc::ServerContext* context, const v1::NotifySponsorCreatedAccountsRequest* request,
    v1::NotifySponsorCreatedAccountsResponse* response) {
  return ServeCall(context, {__func__, kPortalOrAdmin}, response,
                   [&] { return notifier_->NotifySponsorCreatedAccounts(*request); });
}

grpc::Status PsnService::Resend(grpc::ServerContext* context, const v1::ResendRequest* request,
                                v1::ResendResponse* response) {
  return ServeCall(context, {__func__, kPortalOrAdmin}, response,
                   [&] { return notifier_->Resend(*request); });
}

grpc::Status PsnService::SendPasswordReset(grpc::ServerContext* context,
                                           const v1::SendPasswordResetRequest* request,
                                           v1::SendPasswordResetResponse* response) {
  return ServeCall(context, {__func__, kPortalOrAdmin}, response,
                   [&] { return notifier_->SendPasswordReset(*request); });
}

grpc::Status PsnService::SendTestEmail(grpc::ServerContext* context,
                                       const v1::SendTestEmailRequest* request,
                                       v1::SendTestEmailResponse* response) {
  return ServeCall(context, {__func__, kPortalOrAdmin}, response,
                   [&] { return notifier_->SendTestEmail(*request); });
}

grpc::Status PsnService::GetNotificationStatus(grpc::ServerContext* context,
                                               const v1::GetNotificationStatusRequest* request,
                                               v1::GetNotificationStatusResponse* response) {
  return ServeCall(context, {__func__, kPortalOrAdmin}, response,
                   [&] { return notifier_->GetNotificationStatus(*request); });
}

grpc::Status PsnService::ListNotifications(grpc::ServerContext* context,
                                           const v1::ListNotificationsRequest* request,
                                           v1::ListNotificationsResponse* response) {
  return ServeCall(context, {__func__, kPortalOrAdmin}, response,
                   [&] { return notifier_->ListNotifications(*request); });
}

grpc::Status PsnService::GetGuestEmailSettings(grpc::ServerContext* context,
                                               const v1::GetGuestEmailSettingsRequest*,
                                               v1::GetGuestEmailSettingsResponse* response) {
  return ServeCall(context, {__func__, kPortalOrAdmin}, response,
                   [&] { return notifier_->GetGuestEmailSettings(); });
}

grpc::Status PsnService::SetGuestEmailSettings(grpc::ServerContext* context,
                                               const v1::SetGuestEmailSettingsRequest* request,
                                               v1::SetGuestEmailSettingsResponse* response) {
  return ServeCall(context, {__func__, kAdminOnly}, response,
                   [&] { return notifier_->SetGuestEmailSettings(*request); });
}

grpc::Status PsnService::PutTemplate(grpc::ServerContext* context,
                                     const v1::PutTemplateRequest* request,
                                     v1::PutTemplateResponse* response) {
  return ServeCall(context, {__func__, kAdminOnly}, response,
                   [&] { return notifier_->PutTemplate(*request); });
}

grpc::Status PsnService::GetTemplate(grpc::ServerContext* context,
                                     const v1::GetTemplateRequest* request,
                                     v1::GetTemplateResponse* response) {
  return ServeCall(context, {__func__, kPortalOrAdmin}, response,
                   [&] { return notifier_->GetTemplate(*request); });
}

grpc::Status PsnService::ListTemplates(grpc::ServerContext* context,
                                       const v1::ListTemplatesRequest* request,
                                       v1::ListTemplatesResponse* response) {
  return ServeCall(context, {__func__, kPortalOrAdmin}, response,
                   [&] { return notifier_->ListTemplates(*request); });
}

grpc::Status PsnService::DeleteTemplate(grpc::ServerContext* context,
                                        const v1::DeleteTemplateRequest* request,
                                        v1::DeleteTemplateResponse* response) {
  return ServeCall(context, {__func__, kAdminOnly}, response,
                   [&] { return notifier_->DeleteTemplate(*request); });
}

}  // namespace mailroom::psn
