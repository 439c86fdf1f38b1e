// mailroom-psn: a PSN node's guest and sponsor mail service. Serves GuestNotifications (and
// OutboxAdmin) over mutual TLS, queues every notification in its own durable outbox, and
// delivers it with tokens and send permits from the broker. Any number run at once, each
// with its own data_dir.
//
//   mailroom-psn --config=/etc/mailroom/psn-1.textproto [--port_file=PATH]
#include <iostream>
#include <memory>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "common/base/clock.h"
#include "common/rpc/grpc_server.h"
#include "common/base/logging.h"
#include "common/node/node_config.h"
#include "common/node/role_node.h"
#include "psn/psn_notifier.h"
#include "psn/psn_service.h"
#include "psn/settings_store.h"
#include "psn/template_store.h"

ABSL_FLAG(std::string, config, "", "Path of the node's configuration (protobuf text format).");
ABSL_FLAG(std::string, port_file, "",
          "If set, the bound gRPC port is written here once serving (for listen port 0).");

namespace mailroom::psn {
namespace {

namespace cv1 = ::mailroom::common::v1;

int Run() {
  const std::string config_path = absl::GetFlag(FLAGS_config);
  if (config_path.empty()) {
    std::cerr << "mailroom-psn: --config is required\n";
    return 2;
  }
  absl::StatusOr<NodeConfig> config = LoadNodeConfig(config_path, cv1::ROLE_PSN);
  if (!config.ok()) {
    std::cerr << "mailroom-psn: " << config.status().message() << "\n";
    return 2;
  }
  if (absl::Status status = ApplyLoggingConfig(config->logging()); !status.ok()) {
    std::cerr << "mailroom-psn: " << status.message() << "\n";
    return 2;
  }
  RealClock& clock = RealClock::Get();
  absl::StatusOr<std::unique_ptr<GuestEmailSettingsStore>> settings =
      GuestEmailSettingsStore::Open(
          absl::StrCat(config->data_dir(), "/psn-guest-email-settings.pb"),
          config->psn().guest_email_settings(), &clock);
  if (!settings.ok()) {
    MR_LOG(kError, kLogPsn) << "cannot start: " << settings.status().message();
    return 1;
  }
  absl::StatusOr<std::unique_ptr<TemplateStore>> templates = TemplateStore::Open(
      absl::StrCat(config->data_dir(), "/psn-templates.pb"), config->psn().template_dir(), &clock);
  if (!templates.ok()) {
    MR_LOG(kError, kLogPsn) << "cannot start: " << templates.status().message();
    return 1;
  }
  absl::StatusOr<std::unique_ptr<RoleNode>> node = RoleNode::Create(*config, &clock);
  if (!node.ok()) {
    MR_LOG(kError, kLogPsn) << "cannot start: " << node.status().message();
    return 1;
  }
  RoleNode* role_node = node->get();
  NotifierOptions options;
  options.max_message_bytes = role_node->max_message_bytes();
  options.sending_mailbox = [role_node] { return role_node->mailbox(); };
  PsnNotifier notifier(role_node->outbox(), settings->get(), templates->get(), &clock,
                       std::move(options));
  PsnService service(&notifier);
  // RoleNode purges the outbox past its retention hourly.
  return role_node->Serve({&service}, absl::GetFlag(FLAGS_port_file));
}

}  // namespace
}  // namespace mailroom::psn

int main(int argc, char** argv) {
  mailroom::TerminationSignals::Block();
  absl::SetProgramUsageMessage("mailroom PSN service (guest and sponsor mail): --config=<node config>");
  absl::ParseCommandLine(argc, argv);
  return mailroom::psn::Run();
}
