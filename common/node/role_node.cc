#include "common/node/role_node.h"

#include <algorithm>
#include <fstream>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "common/base/proto_time.h"
#include "common/node/graph_submitter.h"
#include "common/rpc/grpc_server.h"
#include "common/base/logging.h"
#include "common/base/metrics.h"
#include "common/base/status_macros.h"
#include "common/rpc/serve_until_terminated.h"
#include "common/rpc/tls.h"

namespace mailroom {
namespace {

namespace sv1 = ::mailroom::status::v1;

constexpr size_t kDefaultMaxMessageBytes = 25 * 1024 * 1024;
constexpr absl::Duration kHousekeepingInterval = absl::Hours(1);

}  // namespace

absl::StatusOr<std::unique_ptr<RoleNode>> RoleNode::Create(const NodeConfig& config,
                                                           const Clock* clock) {
  std::unique_ptr<RoleNode> node(new RoleNode(config, clock));
  const auto& delivery = config.delivery();
  OutboxOptions outbox_options;
  outbox_options.node_name = config.node_name();
  outbox_options.retry_lifetime = FromProtoOr(delivery.retry_lifetime(), absl::Hours(24));
  outbox_options.backoff_initial = FromProtoOr(delivery.backoff_initial(), absl::Seconds(30));
  outbox_options.backoff_max = FromProtoOr(delivery.backoff_max(), absl::Minutes(15));
  outbox_options.retention = FromProtoOr(delivery.retention(), absl::Hours(24 * 7));
  const std::string outbox_file = delivery.outbox_file().empty()
                                      ? absl::StrCat(config.data_dir(), "/outbox.db")
                                      : delivery.outbox_file();
  absl::StatusOr<std::unique_ptr<Outbox>> outbox = Outbox::Open(outbox_file, clock, outbox_options);
  if (!outbox.ok()) {
    return absl::Status(outbox.status().code(),
                        absl::StrCat("delivery.outbox_file: ", outbox.status().message()));
  }
  node->outbox_ = *std::move(outbox);

  MR_ASSIGN_OR_RETURN(std::shared_ptr<grpc::ChannelCredentials> broker_credentials,
                      MakeChannelCredentials(TlsFilesOf(config), Role::kBroker));
  // Keepalive pings notice a dead path to the broker in seconds rather than at the next
  // deadline, so a node recovers quickly when a partition heals.
  grpc::ChannelArguments broker_args;
  broker_args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 15000);
  broker_args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 5000);
  broker_args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  // A broker back from a restart (the standby of an HA pair) is found within a second. With
  // gRPC's default reconnect backoff (1 s, growing to 2 minutes) its channel keeps failing calls
  // at once with the old "connection refused" long after it is up; when the leader then dies,
  // no broker seems to answer, and the node sends its offline allowance outside the etcd ledger
  // instead of waiting for the election (bench/ha_failover.sh, 20 kill -9s: 127 and 140 in a
  // rolling minute at the MTA against a limit of 120).
  broker_args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  broker_args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
  broker_args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  std::vector<std::string> broker_targets(config.broker_targets().begin(),
                                          config.broker_targets().end());
  if (broker_targets.empty()) broker_targets.push_back(config.broker_target());
  std::vector<BrokerEndpoints::Endpoint> brokers;
  for (const std::string& target : broker_targets) {
    brokers.push_back({target, broker::v1::TokenBroker::NewStub(grpc::CreateCustomChannel(
                                   target, broker_credentials, broker_args))});
  }
  node->brokers_ = std::make_unique<BrokerEndpoints>(std::move(brokers));
  if (config.mnt_target().empty()) {
    node->alarms_ = std::make_unique<LoggingAlarmReporter>();
  } else {
    MR_ASSIGN_OR_RETURN(std::shared_ptr<grpc::ChannelCredentials> mnt_credentials,
                        MakeChannelCredentials(TlsFilesOf(config), Role::kMnt));
    node->alarms_ = std::make_unique<MntAlarmReporter>(
        grpc::CreateChannel(config.mnt_target(), mnt_credentials), clock);
  }
  node->tokens_ = std::make_unique<BrokerTokenSource>(
      node->brokers_.get(), clock, BrokerTokenSource::Options{config.node_name()},
      node->alarms_.get());
  node->permits_ = std::make_unique<BrokerPermits>(node->brokers_.get(), config.node_name());
  node->route_resolver_ = std::make_unique<BrokerMailRouteResolver>(node->permits_.get());
  DeliveryOptions delivery_options;
  delivery_options.node_name = config.node_name();
  if (delivery.smtp_connections() > 0) delivery_options.connections = delivery.smtp_connections();
  if (delivery.has_offline_grace()) {
    delivery_options.offline_grace = FromProto(delivery.offline_grace());
  }
  if (delivery.has_offline_messages_per_minute()) {
    delivery_options.offline_messages_per_minute = delivery.offline_messages_per_minute();
  }
  node->worker_ = std::make_unique<DeliveryWorker>(
      node->outbox_.get(), node->tokens_.get(), node->permits_.get(), node->alarms_.get(), clock,
      delivery_options, TransportSubmitterFactory(clock, SmtpSubmitterFactory()));
  DeliveryWorker* worker = node->worker_.get();
  node->outbox_->SetWakeCallback([worker] { worker->Wake(); });
  node->outbox_admin_ = std::make_unique<OutboxAdminService>(node->outbox_.get());
  node->backlog_ = std::make_unique<BacklogMonitor>(
      config.node_name(), BacklogThresholds::FromConfig(delivery), clock, node->alarms_.get());
  RoleNode* self = node.get();
  node->status_service_ = std::make_unique<NodeStatusService>(
      NodeStatusService::Identity{config.node_name(), config.role(), clock->Now()}, clock,
      [self](sv1::GetNodeStatusResponse* response) { return self->FillStatus(response); });
  node->next_purge_ = clock->Now() + kHousekeepingInterval;
  node->tokens_->Start();
  node->worker_->Start();
  node->housekeeping_.Start();
  if (node->outbox_->requeued_on_open() > 0) {
    MR_LOG(kWarn, kLogOutbox) << node->outbox_->requeued_on_open()
                              << " send(s) interrupted by the last stop were queued again";
  }
  return node;
}

RoleNode::RoleNode(NodeConfig config, const Clock* clock)
    : config_(std::move(config)),
      clock_(clock),
      housekeeping_(clock, [this] { return Housekeeping(); }) {}

absl::Time RoleNode::Housekeeping() {
  const absl::Time now = clock_->Now();
  if (now >= next_purge_) {
    absl::StatusOr<int64_t> purged = outbox_->Purge();
    if (purged.ok() && *purged > 0) {
      MR_LOG(kInfo, kLogOutbox) << "purged " << *purged << " entries past their retention";
    }
    next_purge_ = now + kHousekeepingInterval;
  }
  absl::StatusOr<UnsentSummary> unsent = outbox_->Unsent();
  if (unsent.ok()) {
    backlog_->Check(*unsent, KnownCause());
  } else {
    MR_LOG(kWarn, kLogOutbox) << "cannot check the outbox's backlog: "
                              << unsent.status().message();
  }
  return std::min(next_purge_, clock_->Now() + backlog_->CheckInterval());
}

std::string RoleNode::KnownCause() const {
  const HeldToken token = tokens_->held();
  if (!token.usable && !token.last_error.ok()) {
    return absl::StrCat("the node has no usable access token: ", token.last_error.message());
  }
  if (absl::optional<DeliveryErrorRecord> error = worker_->last_error(); error.has_value()) {
    return absl::StrCat("the last delivery attempt failed: ", error->diagnosis.title());
  }
  return "";
}

absl::Status RoleNode::FillStatus(sv1::GetNodeStatusResponse* response) const {
  const absl::Time now = clock_->Now();
  const HeldToken token = tokens_->held();
  sv1::TokenStatus* token_status = response->mutable_token();
  token_status->set_held(token.held);
  token_status->set_usable(token.usable);
  token_status->set_authentication(token.authentication);
  FillTokenTimes(token.expire_time, token.lifetime, token.last_error, now, token_status);

  sv1::DeliveryStatus* delivery = response->mutable_delivery();
  delivery->set_mailbox(token.mailbox);
  MR_ASSIGN_OR_RETURN(*delivery->mutable_outbox(), outbox_->Counts());
  MR_ASSIGN_OR_RETURN(const UnsentSummary unsent, outbox_->Unsent());
  delivery->set_unsent(unsent.count);
  if (unsent.oldest.has_value()) {
    ToProto(std::max(absl::ZeroDuration(),
                     now - FromProto(unsent.oldest->notification().create_time())),
            delivery->mutable_oldest_unsent_age());
    std::string why = WhyUnsent(*unsent.oldest);
    delivery->set_oldest_unsent_reason(why.empty() ? KnownCause() : why);
  }
  delivery->set_backlog_alarm_queued(backlog_->thresholds().queued);
  ToProto(backlog_->thresholds().age, delivery->mutable_backlog_alarm_age());
  delivery->set_backlog_over_threshold(backlog_->over());
  if (absl::optional<DeliveryErrorRecord> error = worker_->last_error(); error.has_value()) {
    sv1::DeliveryError* last = delivery->mutable_last_error();
    ToProto(error->time, last->mutable_time());
    last->set_notification_id(error->notification_id);
    last->set_outcome(error->outcome);
    last->set_reply_code(error->reply_code);
    *last->mutable_diagnosis() = error->diagnosis;
  }
  const MetricLabels labels = {{"node", config_.node_name()}};
  Metrics& metrics = Metrics::Global();
  sv1::LatencySummary* latency = delivery->mutable_latency();
  latency->set_count(static_cast<int64_t>(metrics.ObservationCount(kDeliveryLatencyMetric, labels)));
  if (absl::optional<absl::Duration> p50 = metrics.Quantile(kDeliveryLatencyMetric, labels, 0.5)) {
    ToProto(*p50, latency->mutable_p50());
  }
  if (absl::optional<absl::Duration> p99 = metrics.Quantile(kDeliveryLatencyMetric, labels, 0.99)) {
    ToProto(*p99, latency->mutable_p99());
  }
  return absl::OkStatus();
}

RoleNode::~RoleNode() {
  housekeeping_.Stop();
  if (worker_ != nullptr) worker_->Stop();
  if (tokens_ != nullptr) tokens_->Stop();
}

std::string RoleNode::mailbox() {
  absl::StatusOr<SubmissionGrant> grant = tokens_->Get();
  return grant.ok() ? grant->mailbox : "";
}

size_t RoleNode::max_message_bytes() const {
  const int64_t configured = config_.delivery().max_message_size_bytes();
  return configured > 0 ? static_cast<size_t>(configured) : kDefaultMaxMessageBytes;
}

int RoleNode::Serve(const std::vector<grpc::Service*>& services, const std::string& port_file) {
  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> server_credentials =
      MakeServerCredentials(TlsFilesOf(config_));
  if (!server_credentials.ok()) {
    MR_LOG(kError, kLogRpc) << server_credentials.status().message();
    return 1;
  }
  std::vector<grpc::Service*> all = services;
  all.push_back(outbox_admin_.get());
  all.push_back(status_service_.get());
  GrpcServer server({config_.listen_address(), *server_credentials, all, config_.grpc_reflection()});
  if (absl::Status status = server.Start(); !status.ok()) {
    MR_LOG(kError, kLogRpc) << status.message();
    return 1;
  }
  MR_LOG(kInfo, kLogRpc) << config_.node_name() << " ("
                         << common::v1::Role_Name(config_.role()) << ") serving on port "
                         << server.port();
  if (!port_file.empty()) std::ofstream(port_file) << server.port() << "\n";
  Outbox* outbox = outbox_.get();
  Metrics::Global().RegisterGaugeCallback(
      "mailroom_outbox_entries", "Outbox entries by state (queue depth).", [outbox] {
        std::vector<std::pair<MetricLabels, double>> out;
        absl::StatusOr<common::v1::OutboxCounts> counts = outbox->Counts();
        if (!counts.ok()) return out;
        out.push_back({{{"state", "queued"}}, static_cast<double>(counts->queued())});
        out.push_back({{{"state", "sending"}}, static_cast<double>(counts->sending())});
        out.push_back({{{"state", "sent"}}, static_cast<double>(counts->sent())});
        out.push_back({{{"state", "failed"}}, static_cast<double>(counts->failed())});
        return out;
      });
  const int code =
      ServeUntilTerminated(server, config_.metrics_listen_address(), absl::Seconds(5), kLogRpc);
  if (code != 0) return code;
  worker_->Stop();
  tokens_->Stop();
  return 0;
}

}  // namespace mailroom
