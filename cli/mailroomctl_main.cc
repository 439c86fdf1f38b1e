// mailroomctl: the admin command line for a mailroom cluster, over mutual TLS with an admin
// certificate. Output is for people by default and JSON with --json. This file only
// dispatches: each command group is its own file (cli/role_commands.h).
//
//   mailroomctl --config=admin.textproto status
//   mailroomctl --config=admin.textproto settings show
//   mailroomctl --config=admin.textproto guest register portal=lobby username=U ...
//   mailroomctl help
#include <iostream>
#include <string>
#include <vector>

#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "cli/admin_context.h"
#include "cli/role_commands.h"

namespace mailroom::cli {
namespace {

std::string Usage() {
  return absl::StrCat(
      "usage: mailroomctl --config=ADMIN_CONFIG COMMAND\n", kStatusUsageLines, kBrokerUsageLines,
      kNodeUsageLines, kLogUsageLines,
      "  outbox list|show|retry NODE [ID]   a sending node's outbox (pan, mnt, psn1..)\n"
      "  guest register|create|resend|reset-password|test-email|status|list ...\n"
      "  template put|get|list|delete ...   psn-settings show|set ...   (PSNs; 'guest help')\n"
      "  account upsert-guest|upsert-user|delete-guest|delete-user|list ...   (PAN)\n"
      "  reminders plan|status|settings show|settings set ...            (PAN)\n"
      "  alarm list|raise|clear|status ...   alarm-settings show|set ...  (MnT)\n"
      "  --json                        JSON output for scripts\n"
      "  help                          this text; GROUP help: a group's commands\n"
      "Words after a command: NAME=VALUE is an option; a bare word is a switch if the\n"
      "command has one by that name (copy_me, summary, resolve, validate_only), otherwise a\n"
      "positional argument (an ID, a NODE). An unknown option or an extra word is refused,\n"
      "naming it. Exit status: 0 done, 1 the command failed, 2 a usage error.\n");
}

int Run(const std::vector<std::string>& args) {
  if (args.empty()) {
    std::cerr << Usage();
    return kExitUsage;
  }
  if (args.size() == 1 && args[0] == "help") {
    std::cout << Usage();
    return kExitOk;
  }
  for (const CommandGroup* group :
       {&StatusCommands(), &BrokerCommands(), &NodeCommands(), &LogCommands(), &OutboxCommands(),
        &GuestCommands(), &TemplateCommands(), &PsnSettingsCommands(), &PanCommands(), &MntCommands()}) {
    if (absl::optional<int> code = RunCommandGroup(*group, args); code.has_value()) return *code;
  }
  std::cerr << "mailroomctl: unknown command \"" << args[0] << "\"\n" << Usage();
  return kExitUsage;
}

}  // namespace
}  // namespace mailroom::cli

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("mailroom admin CLI; run without a command for help");
  std::vector<char*> positional = absl::ParseCommandLine(argc, argv);
  std::vector<std::string> args(positional.begin() + 1, positional.end());
  return mailroom::cli::Run(args);
}
