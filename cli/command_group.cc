#include "cli/command_group.h"

#include <algorithm>
#include <iostream>

#include "absl/strings/str_split.h"

namespace mailroom::cli {
namespace {

// How many of `args` the command's words take, or 0 if they do not match.
size_t Match(const Command& command, const std::vector<std::string>& args) {
  const std::vector<std::string> words = absl::StrSplit(command.words, ' ');
  if (words.size() > args.size() || !std::equal(words.begin(), words.end(), args.begin())) {
    return 0;
  }
  return words.size();
}

}  // namespace

int UsageError(absl::string_view usage, absl::string_view problem) {
  std::cerr << "mailroomctl: " << problem << "\n" << usage;
  return kExitUsage;
}

absl::optional<int> RunCommandGroup(const CommandGroup& group,
                                    const std::vector<std::string>& args) {
  if (args.empty() || std::find(group.first_words.begin(), group.first_words.end(), args[0]) ==
                          group.first_words.end()) {
    return absl::nullopt;
  }
  const Command* command = nullptr;
  size_t matched = 0;
  for (const Command& candidate : group.commands) {
    const size_t words = Match(candidate, args);
    if (words > matched) {
      command = &candidate;
      matched = words;
    }
  }
  if (command == nullptr) {
    if (args.size() >= 2 && args[1] == "help") {
      std::cerr << group.usage;
      return kExitOk;
    }
    if (args.size() == 1) {
      std::cerr << group.usage;
      return kExitUsage;
    }
    return UsageError(group.usage, "unknown command \"" + args[0] + " " + args[1] + "\"");
  }
  const std::vector<std::string> rest(args.begin() + matched, args.end());
  absl::StatusOr<Arguments> parsed = Arguments::Parse(rest, command->spec);
  if (!parsed.ok()) {
    return UsageError(group.usage, command->words + ": " + std::string(parsed.status().message()));
  }
  Admin admin;
  if (command->needs_admin) {
    absl::StatusOr<Admin> loaded = LoadAdmin();
    if (!loaded.ok()) {
      std::cerr << "mailroomctl: " << loaded.status().message() << "\n";
      return kExitUsage;
    }
    admin = *std::move(loaded);
  }
  return command->run(admin, *parsed);
}

}  // namespace mailroom::cli
