#include "pan/broker/broker_service.h"

#include "absl/strings/str_cat.h"
#include "common/base/status_macros.h"
#include "common/rpc/service_call.h"
#include "common/rpc/status_grpc.h"

namespace mailroom::broker {

BrokerService::BrokerService(Broker* broker, std::vector<std::string> admin_identities,
                             const Leadership* leadership, QuotaLedger* ledger)
    : broker_(broker),
      admin_identities_(std::move(admin_identities)),
      leadership_(leadership),
      ledger_(ledger),
      leader_check_(leadership == nullptr ? std::function<absl::Status()>()
                                          : [leadership] { return leadership->CheckLeader(); }) {}

CallerCheck BrokerService::Check(const char* method, Allowed allowed, absl::string_view node,
                                 bool reads_only) const {
  static constexpr Role kRoleNodes[] = {Role::kPan, Role::kPsn, Role::kMnt};
  static constexpr Role kAdmin[] = {Role::kAdmin};
  static constexpr Role kAdminOrRoleNodes[] = {Role::kPan, Role::kPsn, Role::kMnt, Role::kAdmin};
  CallerCheck check{method, kAdminOrRoleNodes, "node", node, &admin_identities_};
  switch (allowed) {
    case Allowed::kRoleNodes:
      check.roles = kRoleNodes;
      break;
    case Allowed::kAdmin:
      check.roles = kAdmin;
      check.refusal_note = " (admin only)";
      break;
    case Allowed::kAdminOrRoleNodes:
      break;
  }
  if (!reads_only) check.precondition = &leader_check_;
  return check;
}

// An admin's change: only an admin, only on the leader, forwarded to
// `broker_->Method(*request, <the admin's node name>)` (who made it, for the record).
#define MAILROOM_BROKER_ADMIN_CHANGE_RPC(Method)                                         \
  grpc::Status BrokerService::Method(grpc::ServerContext* context,                       \
                                     const v1::Method##Request* request,                 \
                                     v1::Method##Response* response) {                   \
    return ServeCall(context, Check(#Method, Allowed::kAdmin), response,                 \
                     [&](const PeerIdentity& peer) {                                     \
                       return broker_->Method(*request, peer.node_name);                 \
                     });                                                                 \
  }

absl::Duration BrokerService::LeaseCap() const {
  return leadership_ == nullptr ? absl::InfiniteDuration() : leadership_->RemainingTerm();
}

grpc::ServerUnaryReactor* BrokerService::GetAccessToken(grpc::CallbackServerContext* context,
                                                        const v1::GetAccessTokenRequest* request,
                                                        v1::GetAccessTokenResponse* response) {
  return ServeCall(context, Check(__func__, Allowed::kRoleNodes, request->node()), response,
                   [&] { return broker_->GetAccessToken(*request); });
}

grpc::Status BrokerService::InvalidateAccessToken(grpc::ServerContext* context,
                                                  const v1::InvalidateAccessTokenRequest* request,
                                                  v1::InvalidateAccessTokenResponse* response) {
  return ServeCall(context, Check(__func__, Allowed::kRoleNodes, request->node()), response,
                   [&] { return broker_->InvalidateAccessToken(*request); });
}

grpc::ServerUnaryReactor* BrokerService::AcquireSendPermit(
    grpc::CallbackServerContext* context, const v1::AcquireSendPermitRequest* request,
    v1::AcquireSendPermitResponse* response) {
  return ServeCall(
      context, Check(__func__, Allowed::kRoleNodes, request->node()), response,
      [&](const PeerIdentity& peer) -> absl::StatusOr<v1::AcquireSendPermitResponse> {
        // The default mailbox or a pool mailbox, each with its own limits.
        MR_ASSIGN_OR_RETURN(const std::string configured,
                            broker_->SendingMailbox(request->mailbox()));
        std::vector<int> counts(request->message_recipient_counts().begin(),
                                request->message_recipient_counts().end());
        const absl::Duration cap = LeaseCap();
        if (cap <= absl::ZeroDuration()) return leadership_->CheckLeader();  // the term just ended
        if (!request->offline_sends().empty()) {
          // Counted (and in etcd) before anything is granted on top of them.
          MR_RETURN_IF_ERROR(broker_->quota().CountOfflineSends(
              configured, peer.node_name,
              {request->offline_sends().begin(), request->offline_sends().end()}));
          if (ledger_ != nullptr) MR_RETURN_IF_ERROR(ledger_->Persist(configured));
          if (counts.empty()) return v1::AcquireSendPermitResponse();  // a report only
        }
        absl::StatusOr<v1::AcquireSendPermitResponse> permit = broker_->quota().Acquire(
            configured, peer.node_name, request->connection_id(), counts, request->priority(),
            cap);
        if (permit.ok() && permit->granted()) {
          permit->set_transport(broker_->EffectiveTransport(configured));
        }
        if (ledger_ == nullptr || !permit.ok() || permit->granted_messages() == 0) return permit;
        // Write-ahead: in etcd before the node may send, or taken back.
        if (absl::Status written = ledger_->Persist(configured); !written.ok()) {
          broker_->quota()
              .Release(peer.node_name, permit->permit_id(), request->connection_id(), false)
              .IgnoreError();
          return written;
        }
        return permit;
      });
}

grpc::ServerUnaryReactor* BrokerService::ReleaseSendPermit(
    grpc::CallbackServerContext* context, const v1::ReleaseSendPermitRequest* request,
    v1::ReleaseSendPermitResponse* response) {
  return ServeCall(context, Check(__func__, Allowed::kRoleNodes, request->node()), response,
                   [&](const PeerIdentity& peer) -> absl::StatusOr<v1::ReleaseSendPermitResponse> {
                     if (request->previous_run_ended()) {
                       v1::ReleaseSendPermitResponse ended;
                       ended.set_ended_permits(broker_->quota().EndNodeRun(peer.node_name));
                       return ended;
                     }
                     return broker_->quota().Release(peer.node_name, request->permit_id(),
                                                     request->connection_id(),
                                                     request->connection_closed());
                   });
}

grpc::ServerUnaryReactor* BrokerService::ReportSendResult(
    grpc::CallbackServerContext* context, const v1::ReportSendResultRequest* request,
    v1::ReportSendResultResponse* response) {
  return ServeCall(context, Check(__func__, Allowed::kRoleNodes, request->node()), response,
                   [&](const PeerIdentity& peer)
                       -> absl::StatusOr<v1::ReportSendResultResponse> {
                     std::string box = broker_->quota().PermitMailbox(request->permit_id());
                     if (box.empty()) box = broker_->mailbox();
                     absl::StatusOr<v1::ReportSendResultResponse> reported =
                         broker_->ReportSendResult(peer.node_name, *request, LeaseCap());
                     // A pause (Exchange said the quota is exceeded) outlives this leader too.
                     if (ledger_ != nullptr && reported.ok() &&
                         reported->has_mailbox_paused_until()) {
                       absl::Status written = ledger_->Persist(box);
                       if (!written.ok()) return written;
                     }
                     return reported;
                   });
}

grpc::Status BrokerService::GetSettings(grpc::ServerContext* context,
                                        const v1::GetSettingsRequest*,
                                        v1::GetSettingsResponse* response) {
  return ServeCall(context, Check(__func__, Allowed::kAdmin, "", /*reads_only=*/true), response,
                   [&] { return broker_->GetSettings(); });
}

MAILROOM_BROKER_ADMIN_CHANGE_RPC(UpdateSettings)

grpc::Status BrokerService::TestConnection(grpc::ServerContext* context,
                                           const v1::TestConnectionRequest* request,
                                           grpc::ServerWriter<v1::TestConnectionResponse>* writer) {
  return ServeCall(context, Check(__func__, Allowed::kAdmin), [&]() -> absl::Status {
    v1::TestConnectionResponse last;
    MR_ASSIGN_OR_RETURN(
        *last.mutable_report(),
        broker_->TestConnection(*request, [writer](const v1::TestStep& step) {
          v1::TestConnectionResponse event;
          *event.mutable_step() = step;
          writer->Write(event);
        }));
    writer->Write(last);
    return absl::OkStatus();
  });
}

grpc::Status BrokerService::GetSecretStatus(grpc::ServerContext* context,
                                            const v1::GetSecretStatusRequest*,
                                            v1::GetSecretStatusResponse* response) {
  return ServeCall(context, Check(__func__, Allowed::kAdminOrRoleNodes, "", /*reads_only=*/true),
                   response, [&] { return broker_->GetSecretStatus(); });
}

grpc::Status BrokerService::GetQuotaStatus(grpc::ServerContext* context,
                                           const v1::GetQuotaStatusRequest* request,
                                           v1::GetQuotaStatusResponse* response) {
  return ServeCall(context, Check(__func__, Allowed::kAdminOrRoleNodes, "", /*reads_only=*/true),
                   response, [&] {
    for (v1::MailboxQuota& quota : broker_->QuotaStatus(request->mailbox())) {
      *response->add_mailboxes() = std::move(quota);
    }
    return absl::OkStatus();
  });
}

MAILROOM_BROKER_ADMIN_CHANGE_RPC(ResumeMailbox)

grpc::Status BrokerService::ResolveMailRoute(grpc::ServerContext* context,
                                             const v1::ResolveMailRouteRequest* request,
                                             v1::ResolveMailRouteResponse* response) {
  return ServeCall(context, Check(__func__, Allowed::kAdminOrRoleNodes, "", /*reads_only=*/true),
                   response, [&] { return broker_->ResolveMailRoute(*request); });
}

}  // namespace mailroom::broker
