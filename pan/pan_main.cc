// mailroom-pan: the PAN role node. Keeps the registry of guest accounts and of admin and
// internal users with their expiry, and emails guest-expiry warnings and password-expiry
// reminders at the configured lead times, through its own durable outbox, with tokens and
// send permits from the broker.
//
//   mailroom-pan --config=/etc/mailroom/pan.textproto [--port_file=FILE]
#include <memory>

#include "absl/strings/str_cat.h"
#include "common/base/proto_time.h"
#include "common/base/clock.h"
#include "common/base/text_checks.h"
#include "common/base/logging.h"
#include "common/base/status_macros.h"
#include "common/node/role_main.h"
#include "common/node/role_node.h"
#include "pan/account_registry.h"
#include "pan/reminder_scheduler.h"
#include "pan/reminder_settings.h"
#include "pan/reminders.h"
#include "pan/reminders_service.h"

namespace mailroom::pan {
namespace {

// The PAN section is not checked by LoadNodeConfig (it knows no role's rules).
absl::Status CheckPanConfig(const NodeConfig& config) {
  const mailroom::config::v1::PanConfig& pan = config.pan();
  FieldErrors errors;
  CheckReminderSettings(&errors, "pan.reminder_settings.", SeedReminderSettings(pan),
                        /*require_from=*/false);
  if (pan.has_scan_interval() &&
      FromProtoOr(pan.scan_interval(), absl::Seconds(60)) < absl::Milliseconds(100)) {
    errors.Add("pan.scan_interval", "must be at least 100 ms (unset means 60 s)");
  }
  return errors.ToStatus();
}

absl::StatusOr<int> Run(const RoleStart& start) {
  const NodeConfig& config = start.config;
  RealClock& clock = RealClock::Get();
  MR_ASSIGN_OR_RETURN(std::unique_ptr<AccountRegistry> registry,
                      AccountRegistry::Open(absl::StrCat(config.data_dir(), "/pan.db")));
  MR_ASSIGN_OR_RETURN(ReminderSettings settings,
                      registry->InitSettings(SeedReminderSettings(config.pan()), clock.Now()));
  MR_ASSIGN_OR_RETURN(std::unique_ptr<RoleNode> role_node, RoleNode::Create(config, &clock));
  RemindersOptions options;
  options.default_from = [node = role_node.get()] { return node->mailbox(); };
  options.max_message_bytes = role_node->max_message_bytes();
  options.mail_routes = role_node->route_resolver();
  Reminders reminders(registry.get(), role_node->outbox(), &clock, options);
  if (absl::StatusOr<int> recovered = reminders.Recover(); !recovered.ok()) {
    return absl::Status(recovered.status().code(),
                        absl::StrCat("cannot recover reminders: ", recovered.status().message()));
  }
  ReminderScheduler::Options scheduler_options;
  scheduler_options.scan_interval = FromProtoOr(config.pan().scan_interval(), absl::Seconds(60));
  ReminderScheduler scheduler(&reminders, &clock, scheduler_options);
  reminders.SetChangeCallback([&scheduler] { scheduler.Wake(); });
  MR_LOG(kInfo, kLogPan) << "reminder settings " << settings.etag() << ": "
                         << settings.guest_expiry_lead_times_size()
                         << " guest-expiry lead time(s), "
                         << settings.password_expiry_lead_times_size()
                         << " password-expiry lead time(s); scan every "
                         << absl::FormatDuration(scheduler_options.scan_interval);
  scheduler.Start();
  RemindersService service(&reminders);
  const int code = role_node->Serve({&service}, start.port_file);
  reminders.SetChangeCallback(nullptr);
  scheduler.Stop();
  return code;
}

}  // namespace
}  // namespace mailroom::pan

int main(int argc, char** argv) {
  return mailroom::RoleMain(argc, argv,
                            {"mailroom-pan", mailroom::common::v1::ROLE_PAN,
                             "mailroom PAN service: --config=<node config>",
                             mailroom::pan::CheckPanConfig, mailroom::kLogPan},
                            mailroom::pan::Run);
}
