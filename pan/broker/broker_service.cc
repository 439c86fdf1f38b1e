#include "pan/broker/broker_service.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/base/logging.h"
#include "common/rpc/status_grpc.h"

namespace mailroom::broker {

BrokerService::BrokerService(Broker* broker, std::vector<std::string> admin_identities)
    : broker_(broker), admin_identities_(std::move(admin_identities)) {}

absl::StatusOr<PeerIdentity> BrokerService::Authorize(grpc::ServerContextBase* context,
                                                      Allowed allowed, const std::string& node,
                                                      const char* method) {
  absl::StatusOr<PeerIdentity> peer = PeerIdentityOf(*context->auth_context());
  if (!peer.ok()) return peer.status();
  const bool role_node =
      peer->role == Role::kPan || peer->role == Role::kPsn || peer->role == Role::kMnt;
  const bool admin =
      peer->role == Role::kAdmin &&
      (admin_identities_.empty() || std::find(admin_identities_.begin(), admin_identities_.end(),
                                              peer->node_name) != admin_identities_.end());
  const bool ok = (allowed == Allowed::kRoleNodes && role_node) ||
                  (allowed == Allowed::kAdmin && admin) ||
                  (allowed == Allowed::kAdminOrRoleNodes && (admin || role_node));
  if (!ok) {
    MR_LOG(kWarn, kLogRpc) << "refused " << method << " from " << peer->node_name << " (role "
                           << RoleName(peer->role) << ")";
    return WithReason(absl::PermissionDeniedError(absl::StrCat(
                          method, " is not allowed for role ", RoleName(peer->role),
                          allowed == Allowed::kAdmin ? " (admin only)" : "")),
                      "ROLE_NOT_ALLOWED");
  }
  if (!node.empty() && node != peer->node_name) {
    return WithReason(absl::PermissionDeniedError(absl::StrCat(
                          "node: \"", node, "\" is not the caller's certificate name \"",
                          peer->node_name, "\"")),
                      "ROLE_NOT_ALLOWED");
  }
  return peer;
}

// Authorizes, runs `body` (returning absl::Status), converts at the edge. The _UNARY
// variant finishes a callback-API call.
#define MR_BROKER_UNARY(allowed, node, body)                                               \
  do {                                                                                      \
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();                          \
    absl::StatusOr<PeerIdentity> peer = Authorize(context, allowed, node, __func__);        \
    reactor->Finish(peer.ok() ? ToGrpcStatus([&]() -> absl::Status { body }())             \
                              : ToGrpcStatus(peer.status()));                               \
    return reactor;                                                                         \
  } while (0)

#define MR_BROKER_CALL(allowed, node, body)                                    \
  do {                                                                          \
    absl::StatusOr<PeerIdentity> peer = Authorize(context, allowed, node, __func__); \
    if (!peer.ok()) return ToGrpcStatus(peer.status());                         \
    return ToGrpcStatus([&]() -> absl::Status { body }());                      \
  } while (0)

grpc::ServerUnaryReactor* BrokerService::GetAccessToken(grpc::CallbackServerContext* context,
                                           const v1::GetAccessTokenRequest* request,
                                           v1::GetAccessTokenResponse* response) {
  MR_BROKER_UNARY(Allowed::kRoleNodes, request->node(), {
    absl::StatusOr<v1::GetAccessTokenResponse> result = broker_->GetAccessToken(*request);
    if (!result.ok()) return result.status();
    *response = *std::move(result);
    return absl::OkStatus();
  });
}

grpc::Status BrokerService::InvalidateAccessToken(grpc::ServerContext* context,
                                                  const v1::InvalidateAccessTokenRequest* request,
                                                  v1::InvalidateAccessTokenResponse* response) {
  MR_BROKER_CALL(Allowed::kRoleNodes, request->node(), {
    absl::StatusOr<v1::InvalidateAccessTokenResponse> result =
        broker_->InvalidateAccessToken(*request);
    if (!result.ok()) return result.status();
    *response = *std::move(result);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* BrokerService::AcquireSendPermit(grpc::CallbackServerContext* context,
                                              const v1::AcquireSendPermitRequest* request,
                                              v1::AcquireSendPermitResponse* response) {
  MR_BROKER_UNARY(Allowed::kRoleNodes, request->node(), {
    const std::string configured = broker_->mailbox();
    if (configured.empty()) {
      return WithReason(absl::FailedPreconditionError("SMTP settings not configured"),
                        "SETTINGS_NOT_CONFIGURED");
    }
    if (!request->mailbox().empty() && request->mailbox() != configured) {
      return absl::NotFoundError(absl::StrCat("mailbox: \"", request->mailbox(),
                                              "\" is not the configured mailbox"));
    }
    std::vector<int> counts(request->message_recipient_counts().begin(),
                            request->message_recipient_counts().end());
    absl::StatusOr<v1::AcquireSendPermitResponse> result = broker_->quota().Acquire(
        configured, peer->node_name, request->connection_id(), counts);
    if (!result.ok()) return result.status();
    *response = *std::move(result);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* BrokerService::ReleaseSendPermit(grpc::CallbackServerContext* context,
                                              const v1::ReleaseSendPermitRequest* request,
                                              v1::ReleaseSendPermitResponse* response) {
  MR_BROKER_UNARY(Allowed::kRoleNodes, request->node(), {
    absl::StatusOr<v1::ReleaseSendPermitResponse> result = broker_->quota().Release(
        peer->node_name, request->permit_id(), request->connection_id(),
        request->connection_closed());
    if (!result.ok()) return result.status();
    *response = *std::move(result);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* BrokerService::ReportSendResult(grpc::CallbackServerContext* context,
                                             const v1::ReportSendResultRequest* request,
                                             v1::ReportSendResultResponse* response) {
  MR_BROKER_UNARY(Allowed::kRoleNodes, request->node(), {
    std::vector<v1::SendResult> results(request->results().begin(), request->results().end());
    absl::StatusOr<v1::ReportSendResultResponse> result = broker_->quota().Report(
        peer->node_name, request->permit_id(), results, request->connection_closed());
    if (!result.ok()) return result.status();
    *response = *std::move(result);
    return absl::OkStatus();
  });
}

grpc::Status BrokerService::GetSettings(grpc::ServerContext* context,
                                        const v1::GetSettingsRequest*,
                                        v1::GetSettingsResponse* response) {
  MR_BROKER_CALL(Allowed::kAdmin, "", {
    *response = broker_->GetSettings();
    return absl::OkStatus();
  });
}

grpc::Status BrokerService::UpdateSettings(grpc::ServerContext* context,
                                           const v1::UpdateSettingsRequest* request,
                                           v1::UpdateSettingsResponse* response) {
  MR_BROKER_CALL(Allowed::kAdmin, "", {
    absl::StatusOr<v1::UpdateSettingsResponse> result =
        broker_->UpdateSettings(*request, peer->node_name);
    if (!result.ok()) return result.status();
    *response = *std::move(result);
    return absl::OkStatus();
  });
}

grpc::Status BrokerService::TestConnection(grpc::ServerContext* context,
                                           const v1::TestConnectionRequest* request,
                                           grpc::ServerWriter<v1::TestConnectionResponse>* writer) {
  MR_BROKER_CALL(Allowed::kAdmin, "", {
    absl::StatusOr<v1::TestConnectionReport> report =
        broker_->TestConnection(*request, [writer](const v1::TestStep& step) {
          v1::TestConnectionResponse event;
          *event.mutable_step() = step;
          writer->Write(event);
        });
    if (!report.ok()) return report.status();
    v1::TestConnectionResponse last;
    *last.mutable_report() = *std::move(report);
    writer->Write(last);
    return absl::OkStatus();
  });
}

grpc::Status BrokerService::GetSecretStatus(grpc::ServerContext* context,
                                            const v1::GetSecretStatusRequest*,
                                            v1::GetSecretStatusResponse* response) {
  MR_BROKER_CALL(Allowed::kAdminOrRoleNodes, "", {
    *response = broker_->GetSecretStatus();
    return absl::OkStatus();
  });
}

grpc::Status BrokerService::GetQuotaStatus(grpc::ServerContext* context,
                                           const v1::GetQuotaStatusRequest* request,
                                           v1::GetQuotaStatusResponse* response) {
  MR_BROKER_CALL(Allowed::kAdminOrRoleNodes, "", {
    for (v1::MailboxQuota& quota : broker_->quota().Status(request->mailbox())) {
      *response->add_mailboxes() = std::move(quota);
    }
    return absl::OkStatus();
  });
}

}  // namespace mailroom::broker
