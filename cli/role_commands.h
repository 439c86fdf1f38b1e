// Provides the mailroomctl commands of the role services and their outboxes. Each function
// returns the exit code if `args` is one of its commands, nullopt otherwise.
//   outbox list|show|retry ...  (any sending node)        RunOutboxCommand
//   guest ... / template ... / psn-settings ...           RunPsnCommand
//   account ... / reminders ...                           RunPanCommand
//   alarm ... / alarm-settings ...                        RunMntCommand
#ifndef MAILROOM_CLI_ROLE_COMMANDS_H_
#define MAILROOM_CLI_ROLE_COMMANDS_H_

#include <string>
#include <vector>

#include "absl/types/optional.h"
#include "cli/admin_context.h"

namespace mailroom::cli {

absl::optional<int> RunOutboxCommand(const Admin& admin, const std::vector<std::string>& args);
absl::optional<int> RunPsnCommand(const Admin& admin, const std::vector<std::string>& args);
absl::optional<int> RunPanCommand(const Admin& admin, const std::vector<std::string>& args);
absl::optional<int> RunMntCommand(const Admin& admin, const std::vector<std::string>& args);

}  // namespace mailroom::cli

#endif  // MAILROOM_CLI_ROLE_COMMANDS_H_
