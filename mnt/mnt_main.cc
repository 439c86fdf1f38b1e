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
#include <iostream>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "common/base/clock.h"
#include "common/rpc/grpc_server.h"
#include "common/base/logging.h"
#include "common/node/node_config.h"
#include "common/node/role_node.h"
#include "mnt/alarm_manager.h"
#include "mnt/alarm_store.h"
#include "mnt/alarms_service.h"
#include "mnt/summary_scheduler.h"

ABSL_FLAG(std::string, config, "", "Path of the node's configuration (protobuf text format).");
ABSL_FLAG(std::string, port_file, "",
          "If set, the bound gRPC port is written here once serving (for listen port 0).");

namespace mailroom::mnt {
namespace {

namespace cv1 = ::mailroom::common::v1;

int Run() {
  const std::string config_path = absl::GetFlag(FLAGS_config);
  if (config_path.empty()) {
    std::cerr << "mailroom-mnt: --config is required\n";
    return 2;
  }
  absl::StatusOr<NodeConfig> config = LoadNodeConfig(config_path, cv1::ROLE_MNT);
  if (!config.ok()) {
    std::cerr << "mailroom-mnt: " << config.status().message() << "\n";
    return 2;
  }
  if (absl::Status status = ApplyLoggingConfig(config->logging()); !status.ok()) {
    std::cerr << "mailroom-mnt: " << status.message() << "\n";
    return 2;
  }
  RealClock& clock = RealClock::Get();
  absl::StatusOr<std::unique_ptr<RoleNode>> node = RoleNode::Create(*config, &clock);
  if (!node.ok()) {
    MR_LOG(kError, kLogMnt) << "cannot start: " << node.status().message();
    return 1;
  }
  absl::StatusOr<std::unique_ptr<AlarmStore>> store =
      AlarmStore::Open(absl::StrCat(config->data_dir(), "/alarms.db"));
  if (!store.ok()) {
    MR_LOG(kError, kLogMnt) << "cannot start: " << store.status().message();
    return 1;
  }
  AlarmManagerOptions options;
  options.node_name = config->node_name();
  options.max_message_bytes = (*node)->max_message_bytes();
  if (config->delivery().has_retention()) {
    options.retention = absl::Seconds(config->delivery().retention().seconds());
  }
  AlarmManager manager(store->get(), (*node)->outbox(), &clock, options);
  if (absl::Status status = manager.Start(config->mnt().alarm_settings()); !status.ok()) {
    MR_LOG(kError, kLogMnt) << "cannot start: " << status.message();
    return 1;
  }
  SummaryScheduler scheduler(&manager, &clock);
  scheduler.Start();
  AlarmsService service(&manager);
  const int code = (*node)->Serve({&service}, absl::GetFlag(FLAGS_port_file));
  scheduler.Stop();
  return code;
}

}  // namespace
}  // namespace mailroom::mnt

int main(int argc, char** argv) {
  mailroom::TerminationSignals::Block();
  absl::SetProgramUsageMessage("mailroom MnT node (alarms): --config=<node config>");
  absl::ParseCommandLine(argc, argv);
  return mailroom::mnt::Run();
}
