// mailroom-psn: a PSN node's guest and sponsor mail service. Serves GuestNotifications (and
// OutboxAdmin) over mutual TLS, queues every notification in its own durable outbox, and
// delivers it with tokens and send permits from the broker. Any number run at once, each
// with its own data_dir.
//
//   mailroom-psn --config=/etc/mailroom/psn-1.textproto [--port_file=PATH]
#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/base/clock.h"
#include "common/base/logging.h"
#include "common/base/status_macros.h"
#include "common/node/role_main.h"
#include "common/node/role_node.h"
#include "psn/psn_notifier.h"
#include "psn/psn_service.h"
#include "psn/settings_store.h"
#include "psn/template_store.h"

namespace mailroom::psn {
namespace {

absl::StatusOr<int> Run(const RoleStart& start) {
  const NodeConfig& config = start.config;
  RealClock& clock = RealClock::Get();
  MR_ASSIGN_OR_RETURN(std::unique_ptr<GuestEmailSettingsStore> settings,
                      GuestEmailSettingsStore::Open(
                          absl::StrCat(config.data_dir(), "/psn-guest-email-settings.pb"),
                          config.psn().guest_email_settings(), &clock));
  MR_ASSIGN_OR_RETURN(
      std::unique_ptr<TemplateStore> templates,
      TemplateStore::Open(absl::StrCat(config.data_dir(), "/psn-templates.pb"),
                          config.psn().template_dir(), &clock));
  MR_ASSIGN_OR_RETURN(std::unique_ptr<RoleNode> role_node, RoleNode::Create(config, &clock));
  NotifierOptions options;
  options.max_message_bytes = role_node->max_message_bytes();
  options.sending_mailbox = [node = role_node.get()] { return node->mailbox(); };
  options.mail_routes = role_node->route_resolver();
  PsnNotifier notifier(role_node->outbox(), settings.get(), templates.get(), &clock,
                       std::move(options));
  PsnService service(&notifier);
  // RoleNode purges the outbox past its retention hourly.
  return role_node->Serve({&service}, start.port_file);
}

}  // namespace
}  // namespace mailroom::psn

int main(int argc, char** argv) {
  return mailroom::RoleMain(
      argc, argv,
      {"mailroom-psn", mailroom::common::v1::ROLE_PSN,
       "mailroom PSN service (guest and sponsor mail): --config=<node config>",
       /*check_role_config=*/nullptr, mailroom::kLogPsn},
      mailroom::psn::Run);
}
