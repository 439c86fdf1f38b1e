// Provides mailroomctl's command groups, one file each; mailroomctl_main.cc dispatches to
// them with RunCommandGroup (cli/command_group.h).
//   settings show|test|set, secret status, quota   the token broker     broker_commands.cc
//   health, metrics                                every node           node_commands.cc
//   status                                         every node, MnT      status_commands.cc
//   log show|set                                   any node             log_commands.cc
//   outbox list|show|retry                         any sending node     outbox_commands.cc
//   guest ...                                      the PSNs             psn_guest_commands.cc
//   template ...                                   the PSNs             psn_template_commands.cc
//   psn-settings ...                               the PSNs             psn_settings_commands.cc
//   account ..., reminders ...                     the PAN              pan_commands.cc
//   alarm ..., alarm-settings ...                  the MnT              mnt_commands.cc
// Each group is built on first use and never destroyed. Thread-safe.
#ifndef MAILROOM_CLI_ROLE_COMMANDS_H_
#define MAILROOM_CLI_ROLE_COMMANDS_H_

#include "cli/command_group.h"

namespace mailroom::cli {

// The usage lines of the broker, node and status commands, also part of `mailroomctl help`.
extern const char kBrokerUsageLines[];
extern const char kNodeUsageLines[];
extern const char kStatusUsageLines[];
extern const char kLogUsageLines[];

const CommandGroup& BrokerCommands();
const CommandGroup& NodeCommands();
const CommandGroup& StatusCommands();
const CommandGroup& LogCommands();
const CommandGroup& OutboxCommands();
const CommandGroup& GuestCommands();
const CommandGroup& TemplateCommands();
const CommandGroup& PsnSettingsCommands();
const CommandGroup& PanCommands();
const CommandGroup& MntCommands();

}  // namespace mailroom::cli

#endif  // MAILROOM_CLI_ROLE_COMMANDS_H_
