// mailroom-mnt: the MnT node. Receives alarms from every node and from the broker, keeps them
// (<data_dir>/alarms.db), and emails them to the admin recipients per Alarm Settings, with
// repeats suppressed and summarized. Delivers its mail through its own outbox with tokens and
// permits from the broker (common/node/role_node.h).
//
//   mailroom-mnt --config=/etc/mailroom/mnt.textproto [--port_file=FILE]
//
// The MnT's own alarms (e.g. its failed deliveries) go where RoleNode sends them: to the log
// when the config has no mnt_target, or, with mnt_target set to this node's own address, into
// its own store, where AlarmManager's loop guard keeps mail-path alarms from being emailed.
#include <chrono>
#include <map>
#include <memory>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/base/clock.h"
#include "common/base/logging.h"
#include "common/base/proto_time.h"
#include "common/base/status_macros.h"
#include "common/node/node_config.h"
#include "common/rpc/role.h"
#include "common/rpc/status_grpc.h"
#include "common/rpc/tls.h"
#include "common/node/role_main.h"
#include "common/node/role_node.h"
#include "mnt/alarm_manager.h"
#include "mnt/alarm_store.h"
#include "mnt/alarms_service.h"
#include "mnt/local_alarm_reporter.h"
#include "mnt/node_watch.h"
#include "mnt/summary_scheduler.h"
#include "third_party/grpc_health/health.grpc.pb.h"

namespace mailroom::mnt {
namespace {

using ::mailroom::config::v1::MntConfig;

// The watch over the configured nodes, each asked for its gRPC health over mutual TLS with
// the MnT's certificate (the server's certificate must carry the node's role).
absl::StatusOr<std::unique_ptr<NodeWatch>> MakeNodeWatch(const NodeConfig& config,
                                                         AlarmReporter* alarms,
                                                         const Clock* clock) {
  const MntConfig& mnt = config.mnt();
  using HealthStub = ::grpc::health::v1::Health::Stub;
  auto stubs = std::make_shared<std::map<std::string, std::unique_ptr<HealthStub>>>();
  for (int i = 0; i < mnt.watched_nodes_size(); ++i) {
    const WatchedNode& node = mnt.watched_nodes(i);
    const std::string field = absl::StrCat("mnt.watched_nodes[", i, "]");
    if (node.name().empty() || node.target().empty()) {
      return absl::InvalidArgumentError(absl::StrCat(field, ": name and target are required"));
    }
    if (stubs->count(node.name()) > 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(field, ".name: \"", node.name(), "\" is watched twice"));
    }
    absl::StatusOr<Role> role = ParseRole(absl::AsciiStrToLower(
        absl::StripPrefix(mailroom::common::v1::Role_Name(node.role()), "ROLE_")));
    if (!role.ok() || node.role() == mailroom::common::v1::ROLE_UNSPECIFIED) {
      return absl::InvalidArgumentError(absl::StrCat(field, ".role: required"));
    }
    MR_ASSIGN_OR_RETURN(std::shared_ptr<grpc::ChannelCredentials> credentials,
                        MakeChannelCredentials(TlsFilesOf(config), *role));
    (*stubs)[node.name()] = ::grpc::health::v1::Health::NewStub(
        grpc::CreateChannel(node.target(), credentials));
  }
  NodeWatchOptions options;
  options.mnt_node_name = config.node_name();
  if (mnt.has_node_down_after()) options.down_after = FromProto(mnt.node_down_after());
  if (mnt.has_node_check_interval()) options.check_interval = FromProto(mnt.node_check_interval());
  std::vector<WatchedNode> nodes(mnt.watched_nodes().begin(), mnt.watched_nodes().end());
  NodeWatch::Probe probe = [stubs](const WatchedNode& node) -> absl::Status {
    grpc::ClientContext context;
    // gRPC deadlines are wall-clock by nature; this is transport, not logic under test.
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    ::grpc::health::v1::HealthCheckResponse response;
    const grpc::Status status = stubs->at(node.name())->Check(&context, {}, &response);
    if (!status.ok()) return FromGrpcStatus(status);
    if (response.status() != ::grpc::health::v1::HealthCheckResponse::SERVING) {
      return absl::UnavailableError(absl::StrCat(
          "health is ", ::grpc::health::v1::HealthCheckResponse::ServingStatus_Name(
                            response.status())));
    }
    return absl::OkStatus();
  };
  return std::make_unique<NodeWatch>(std::move(nodes), std::move(probe), alarms, clock, options);
}

absl::StatusOr<int> Run(const RoleStart& start) {
  const NodeConfig& config = start.config;
  RealClock& clock = RealClock::Get();
  MR_ASSIGN_OR_RETURN(std::unique_ptr<RoleNode> node, RoleNode::Create(config, &clock));
  MR_ASSIGN_OR_RETURN(std::unique_ptr<AlarmStore> store,
                      AlarmStore::Open(absl::StrCat(config.data_dir(), "/alarms.db")));
  AlarmManagerOptions options;
  options.node_name = config.node_name();
  options.max_message_bytes = node->max_message_bytes();
  options.mail_routes = node->route_resolver();
  if (config.delivery().has_retention()) {
    options.retention = absl::Seconds(config.delivery().retention().seconds());
  }
  AlarmManager manager(store.get(), node->outbox(), &clock, options);
  MR_RETURN_IF_ERROR(manager.Start(config.mnt().alarm_settings()));
  SummaryScheduler scheduler(&manager, &clock);
  scheduler.Start();
  LocalAlarmReporter own_alarms(&manager, config.node_name());
  MR_ASSIGN_OR_RETURN(std::unique_ptr<NodeWatch> watch,
                      MakeNodeWatch(config, &own_alarms, &clock));
  watch->Start();
  AlarmsService service(&manager);
  const int code = node->Serve({&service}, start.port_file);
  watch->Stop();
  scheduler.Stop();
  return code;
}

}  // namespace
}  // namespace mailroom::mnt

int main(int argc, char** argv) {
  return mailroom::RoleMain(argc, argv,
                            {"mailroom-mnt", mailroom::common::v1::ROLE_MNT,
                             "mailroom MnT node (alarms): --config=<node config>",
                             /*check_role_config=*/nullptr, mailroom::kLogMnt},
                            mailroom::mnt::Run);
}
