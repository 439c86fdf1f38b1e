// Provides PsnService, the GuestNotifications gRPC service: a thin layer that authorizes each
// call on the role in the caller's verified certificate (portals and admins send and read;
// only admins change settings and templates), hands the request to PsnNotifier, and converts
// absl::Status to grpc::Status in one place. Thread-safe.
#ifndef MAILROOM_PSN_PSN_SERVICE_H_
#define MAILROOM_PSN_PSN_SERVICE_H_

#include "proto/mailroom/psn/v1/psn.grpc.pb.h"
#include "psn/psn_notifier.h"

namespace mailroom::psn {

class PsnService final : public v1::GuestNotifications::Service {
 public:
  // `notifier` is not owned and must outlive the service.
  explicit PsnService(PsnNotifier* notifier) : notifier_(notifier) {}

  grpc::Status NotifySelfRegistration(grpc::ServerContext* context,
                                      const v1::NotifySelfRegistrationRequest* request,
                                      v1::NotifySelfRegistrationResponse* response) override;
  grpc::Status NotifySponsorCreatedAccounts(
      grpc::ServerContext* context, const v1::NotifySponsorCreatedAccountsRequest* request,
      v1::NotifySponsorCreatedAccountsResponse* response) override;
  grpc::Status Resend(grpc::ServerContext* context, const v1::ResendRequest* request,
                      v1::ResendResponse* response) override;
  grpc::Status SendPasswordReset(grpc::ServerContext* context,
                                 const v1::SendPasswordResetRequest* request,
                                 v1::SendPasswordResetResponse* response) override;
  grpc::Status SendTestEmail(grpc::ServerContext* context, const v1::SendTestEmailRequest* request,
                             v1::SendTestEmailResponse* response) override;
  grpc::Status GetNotificationStatus(grpc::ServerContext* context,
                                     const v1::GetNotificationStatusRequest* request,
                                     v1::GetNotificationStatusResponse* response) override;
  grpc::Status ListNotifications(grpc::ServerContext* context,
                                 const v1::ListNotificationsRequest* request,
                                 v1::ListNotificationsResponse* response) override;
  grpc::Status GetGuestEmailSettings(grpc::ServerContext* context,
                                     const v1::GetGuestEmailSettingsRequest* request,
                                     v1::GetGuestEmailSettingsResponse* response) override;
  grpc::Status SetGuestEmailSettings(grpc::ServerContext* context,
                                     const v1::SetGuestEmailSettingsRequest* request,
                                     v1::SetGuestEmailSettingsResponse* response) override;
  grpc::Status PutTemplate(grpc::ServerContext* context, const v1::PutTemplateRequest* request,
                           v1::PutTemplateResponse* response) override;
  grpc::Status GetTemplate(grpc::ServerContext* context, const v1::GetTemplateRequest* request,
                           v1::GetTemplateResponse* response) override;
  grpc::Status ListTemplates(grpc::ServerContext* context, const v1::ListTemplatesRequest* request,
                             v1::ListTemplatesResponse* response) override;
  grpc::Status DeleteTemplate(grpc::ServerContext* context,
                              const v1::DeleteTemplateRequest* request,
                              v1::DeleteTemplateResponse* response) override;

 private:
  PsnNotifier* const notifier_;
};

}  // namespace mailroom::psn

#endif  // MAILROOM_PSN_PSN_SERVICE_H_
