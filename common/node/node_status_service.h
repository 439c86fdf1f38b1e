// Provides NodeStatusService, the NodeStatus gRPC service (proto/mailroom/status/v1) every
// node serves for admins: it answers with the node's name, role, version, start time and the
// time of the answer, and lets the node's runtime fill in the rest (RoleNode: its outbox,
// token, last delivery error and latency; the broker: its token health, send quota and
// credential expiry). It also shows and sets the node's log levels at run time
// (GetLogLevels, SetLogLevel: the seed's debug log configuration), through a
// LogLevelOverrides it owns, so an override for a limited time reverts by itself. Admin
// certificates only (and, where the node has a list of admin identities, only those).
// Thread-safe if the filler is.
#ifndef MAILROOM_COMMON_NODE_NODE_STATUS_SERVICE_H_
#define MAILROOM_COMMON_NODE_NODE_STATUS_SERVICE_H_

#include <functional>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/base/clock.h"
#include "common/base/log_level_overrides.h"
#include "common/rpc/service_call.h"
#include "proto/mailroom/common/v1/common.pb.h"
#include "proto/mailroom/status/v1/status.grpc.pb.h"

namespace mailroom {

class NodeStatusService final : public mailroom::status::v1::NodeStatus::Service {
 public:
  struct Identity {
    std::string node_name;
    mailroom::common::v1::Role role = mailroom::common::v1::ROLE_UNSPECIFIED;
    absl::Time start_time;
  };
  // Fills the node-specific part of a response whose identity fields are set.
  using Filler = std::function<absl::Status(mailroom::status::v1::GetNodeStatusResponse*)>;

  // `clock` (and `admin_identities`, if not null) must outlive the service.
  // `admin_identities`, when not null and not empty, restricts callers further to those
  // certificate names (the broker's BrokerConfig.admin_identities).
  NodeStatusService(Identity identity, const Clock* clock, Filler fill,
                    const std::vector<std::string>* admin_identities = nullptr);

  grpc::Status GetNodeStatus(grpc::ServerContext* context,
                             const mailroom::status::v1::GetNodeStatusRequest* request,
                             mailroom::status::v1::GetNodeStatusResponse* response) override;
  MAILROOM_UNARY_RPC(mailroom::status::v1, GetLogLevels);
  MAILROOM_UNARY_RPC(mailroom::status::v1, SetLogLevel);

 private:
  // The caller check of every RPC: admins (of the list, if there is one).
  CallerCheck AdminCheck(const char* method) const;

  const Identity identity_;
  const Clock* const clock_;
  const Filler fill_;
  const std::vector<std::string>* const admin_identities_;
  LogLevelOverrides log_levels_;
};

// Fills a TokenStatus's times and failure from a token that expires at `expire_time` after
// living `lifetime` in all (age = lifetime - time left), and the last failure to get one
// (with its Diagnosis, if it carries one). The caller sets held, usable and authentication.
void FillTokenTimes(absl::Time expire_time, absl::Duration lifetime,
                    const absl::Status& last_error, absl::Time now,
                    mailroom::status::v1::TokenStatus* out);

}  // namespace mailroom

#endif  // MAILROOM_COMMON_NODE_NODE_STATUS_SERVICE_H_
