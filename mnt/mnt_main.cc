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
#include <memory>

#include "absl/strings/str_cat.h"
#include "common/base/clock.h"
#include "common/base/logging.h"
#include "common/node/role_main.h"
#include "common/node/role_node.h"
#include "mnt/alarm_manager.h"
#include "mnt/alarm_store.h"
#include "mnt/alarms_service.h"
#include "mnt/summary_scheduler.h"

namespace mailroom::mnt {
namespace {

int Run(const RoleStart& start) {
  const NodeConfig& config = start.config;
  RealClock& clock = RealClock::Get();
  absl::StatusOr<std::unique_ptr<RoleNode>> node = RoleNode::Create(config, &clock);
  if (!node.ok()) {
    MR_LOG(kError, kLogMnt) << "cannot start: " << node.status().message();
    return 1;
  }
  absl::StatusOr<std::unique_ptr<AlarmStore>> store =
      AlarmStore::Open(absl::StrCat(config.data_dir(), "/alarms.db"));
  if (!store.ok()) {
    MR_LOG(kError, kLogMnt) << "cannot start: " << store.status().message();
    return 1;
  }
  AlarmManagerOptions options;
  options.node_name = config.node_name();
  options.max_message_bytes = (*node)->max_message_bytes();
  if (config.delivery().has_retention()) {
    options.retention = absl::Seconds(config.delivery().retention().seconds());
  }
  AlarmManager manager(store->get(), (*node)->outbox(), &clock, options);
  if (absl::Status status = manager.Start(config.mnt().alarm_settings()); !status.ok()) {
    MR_LOG(kError, kLogMnt) << "cannot start: " << status.message();
    return 1;
  }
  SummaryScheduler scheduler(&manager, &clock);
  scheduler.Start();
  AlarmsService service(&manager);
  const int code = (*node)->Serve({&service}, start.port_file);
  scheduler.Stop();
  return code;
}

}  // namespace
}  // namespace mailroom::mnt

int main(int argc, char** argv) {
  return mailroom::RoleMain(argc, argv,
                            {"mailroom-mnt", mailroom::common::v1::ROLE_MNT,
                             "mailroom MnT node (alarms): --config=<node config>"},
                            mailroom::mnt::Run);
}
