// Provides RoleNode, the runtime every sending role (PAN, PSN, MnT) is built on, wired from
// its NodeConfig: the durable outbox, the broker client (cached tokens and send permits over
// mutual TLS), the delivery worker, the alarm reporter towards the MnT, the QUEUE_BACKLOG
// check of its outbox, and a gRPC server that serves the role's services plus OutboxAdmin,
// NodeStatus, health and reflection until SIGTERM. A role's
// run, started by RoleMain (common/node/role_main.h) with its checked config, creates a
// RoleNode, builds its service over outbox()/alarms(), and calls Serve(). Thread-safe after
// Create().
#ifndef MAILROOM_COMMON_ROLE_NODE_H_
#define MAILROOM_COMMON_ROLE_NODE_H_

#include <memory>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/status/statusor.h"
#include "common/node/alarm_reporter.h"
#include "common/node/backlog_monitor.h"
#include "common/node/broker_client.h"
#include "common/base/background_loop.h"
#include "common/base/clock.h"
#include "common/node/delivery_worker.h"
#include "common/node/from_address_check.h"
#include "common/node/node_config.h"
#include "common/node/node_status_service.h"
#include "common/outbox/outbox.h"
#include "common/outbox/outbox_admin_service.h"

namespace mailroom {

class RoleNode {
 public:
  // Opens the outbox (DeliveryConfig.outbox_file, default <data_dir>/outbox.db), connects to
  // the broker and the MnT, and starts delivering. `clock` must outlive the node.
  static absl::StatusOr<std::unique_ptr<RoleNode>> Create(const NodeConfig& config,
                                                          const Clock* clock);
  ~RoleNode();

  const NodeConfig& config() const { return config_; }
  const Clock* clock() const { return clock_; }
  Outbox* outbox() { return outbox_.get(); }
  AlarmReporter* alarms() { return alarms_.get(); }
  // The configured sending mailbox as the broker last said (empty until it answered once).
  std::string mailbox();
  // The broker's answer to "may the mail of a purpose be sent as this From?", for the role
  // services' save-time check (common/node/from_address_check.h).
  MailRouteResolver* route_resolver() { return route_resolver_.get(); }
  // Largest rendered message this node accepts (DeliveryConfig.max_message_size_bytes).
  size_t max_message_bytes() const;

  // Serves `services` (not owned) plus OutboxAdmin and NodeStatus until SIGTERM/SIGINT, then
  // stops delivering and returns 0. Writes the bound port to `port_file` if not empty.
  int Serve(const std::vector<grpc::Service*>& services, const std::string& port_file);

 private:
  RoleNode(NodeConfig config, const Clock* clock);
  // At start and every BacklogMonitor::CheckInterval(): checks the outbox's backlog (raising
  // or clearing QUEUE_BACKLOG); hourly: drops SENT and FAILED entries past their retention
  // (Outbox::Purge). Returns when to run again.
  absl::Time Housekeeping();
  // Why mail may not go out, when the outbox's entries do not say: no usable token, or the
  // last failed attempt. Empty if neither.
  std::string KnownCause() const;
  // The sending node's part of GetNodeStatus: token, outbox, backlog, last error, latency.
  absl::Status FillStatus(mailroom::status::v1::GetNodeStatusResponse* response) const;

  NodeConfig config_;
  const Clock* clock_;
  std::unique_ptr<Outbox> outbox_;
  std::unique_ptr<BrokerEndpoints> brokers_;
  // Before tokens_: the token source reports to it, so it must outlive the source.
  std::unique_ptr<AlarmReporter> alarms_;
  std::unique_ptr<BrokerTokenSource> tokens_;
  std::unique_ptr<BrokerPermits> permits_;
  std::unique_ptr<BrokerMailRouteResolver> route_resolver_;
  std::unique_ptr<DeliveryWorker> worker_;
  std::unique_ptr<OutboxAdminService> outbox_admin_;
  std::unique_ptr<BacklogMonitor> backlog_;
  std::unique_ptr<NodeStatusService> status_service_;
  absl::Time next_purge_;  // housekeeping thread only
  BackgroundLoop housekeeping_;
};

}  // namespace mailroom

#endif  // MAILROOM_COMMON_ROLE_NODE_H_
