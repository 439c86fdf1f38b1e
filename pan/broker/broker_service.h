// Provides BrokerService, the TokenBroker gRPC service: a thin layer that authorizes each
// call on the role in the caller's verified certificate (role nodes get tokens and permits;
// only admins read or change settings and run Test Connection), checks that a request's
// `node` is the caller's own, and converts between absl and gRPC status in one place. With
// brokers elected through etcd, a standby answers every call that grants, sends or changes
// anything with UNAVAILABLE, reason NOT_LEADER and the leader's address (the ServeCall
// precondition), and the leader caps the permits and connection slots it grants to end
// within its term. Thread-safe.
#ifndef MAILROOM_PAN_BROKER_BROKER_SERVICE_H_
#define MAILROOM_PAN_BROKER_BROKER_SERVICE_H_

#include <functional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "common/rpc/rpc_auth.h"
#include "common/rpc/service_call.h"
#include "pan/broker/broker.h"
#include "pan/broker/leadership.h"
#include "pan/broker/quota_ledger.h"
#include "proto/mailroom/broker/v1/broker.grpc.pb.h"

namespace mailroom::broker {

// The hot, non-blocking RPCs use gRPC's callback API (no hand-off to a sync thread pool);
// Test Connection, which blocks on the network for seconds, and the admin RPCs stay sync.
using BrokerServiceBase = v1::TokenBroker::WithCallbackMethod_GetAccessToken<
    v1::TokenBroker::WithCallbackMethod_AcquireSendPermit<
        v1::TokenBroker::WithCallbackMethod_ReportSendResult<
            v1::TokenBroker::WithCallbackMethod_ReleaseSendPermit<v1::TokenBroker::Service>>>>;

class BrokerService final : public BrokerServiceBase {
 public:
  // `admin_identities` (certificate CNs) restricts admin calls further; empty allows any
  // certificate with the admin role.
  // `leadership` (not owned; null in single-broker mode) says whether this broker leads;
  // `ledger` (not owned; null without etcd) is written before each grant is answered.
  BrokerService(Broker* broker, std::vector<std::string> admin_identities,
                const Leadership* leadership = nullptr, QuotaLedger* ledger = nullptr);

  MAILROOM_CALLBACK_UNARY_RPC(v1, GetAccessToken);
  MAILROOM_UNARY_RPC(v1, InvalidateAccessToken);
  MAILROOM_CALLBACK_UNARY_RPC(v1, AcquireSendPermit);
  MAILROOM_CALLBACK_UNARY_RPC(v1, ReleaseSendPermit);
  MAILROOM_CALLBACK_UNARY_RPC(v1, ReportSendResult);
  MAILROOM_UNARY_RPC(v1, GetSettings);
  MAILROOM_UNARY_RPC(v1, UpdateSettings);
  grpc::Status TestConnection(grpc::ServerContext* context,
                              const v1::TestConnectionRequest* request,
                              grpc::ServerWriter<v1::TestConnectionResponse>* writer) override;
  MAILROOM_UNARY_RPC(v1, GetSecretStatus);
  MAILROOM_UNARY_RPC(v1, GetQuotaStatus);
  MAILROOM_UNARY_RPC(v1, ResumeMailbox);
  MAILROOM_UNARY_RPC(v1, ResolveMailRoute);

 private:
  enum class Allowed { kRoleNodes, kAdmin, kAdminOrRoleNodes };
  // Who may make a call: role nodes are PAN, PSN and MnT; an admin must be one of
  // `admin_identities_` when that is not empty. `node`, when not empty, must be the caller's
  // own name. `reads_only`: a standby answers it too (its answer may be stale).
  CallerCheck Check(const char* method, Allowed allowed, absl::string_view node = "",
                    bool reads_only = false) const;
  // How long what this broker grants now may last: what is left of its term.
  absl::Duration LeaseCap() const;

  Broker* broker_;
  std::vector<std::string> admin_identities_;
  const Leadership* leadership_;
  QuotaLedger* ledger_;
  // leadership_->CheckLeader(), the precondition of the calls only the leader answers.
  const std::function<absl::Status()> leader_check_;
};

}  // namespace mailroom::broker

#endif  // MAILROOM_PAN_BROKER_BROKER_SERVICE_H_
