// Provides the dispatch of mailroomctl's command words to commands: a group is a table of
// commands sharing a usage text ("alarm list", "alarm raise", ...); RunCommandGroup matches
// the words, parses the rest with the one argument parser (cli/arguments.h), loads the admin
// configuration and runs the command. Stateless; thread-compatible.
#ifndef MAILROOM_CLI_COMMAND_GROUP_H_
#define MAILROOM_CLI_COMMAND_GROUP_H_

#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/types/optional.h"
#include "cli/admin_context.h"
#include "cli/arguments.h"

namespace mailroom::cli {

struct Command {
  std::string words;  // "alarm list", "quota"
  ArgumentSpec spec;
  int (*run)(const Admin& admin, const Arguments& args);
  // Commands that talk to no configured node (metrics) run without --config, with an empty
  // Admin.
  bool needs_admin = true;
};

struct CommandGroup {
  std::vector<std::string> first_words;  // the first command words this group answers to
  std::string usage;
  std::vector<Command> commands;
};

// Prints "mailroomctl: PROBLEM" and `usage` to stderr; returns kExitUsage.
int UsageError(absl::string_view usage, absl::string_view problem);

// nullopt when args[0] is none of the group's first words. Otherwise the exit code: the
// command's; kExitOk for "<word> help" (the usage on stderr); kExitUsage, with the problem
// and the usage on stderr, for an unknown command, a bad argument or an unreadable --config.
absl::optional<int> RunCommandGroup(const CommandGroup& group,
                                    const std::vector<std::string>& args);

}  // namespace mailroom::cli

#endif  // MAILROOM_CLI_COMMAND_GROUP_H_
