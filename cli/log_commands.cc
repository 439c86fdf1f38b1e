// mailroomctl log commands, against any node (the seed's debug log configuration, at run
// time):
//   log show NODE [--json]                          every component's level, with overrides
//   log set NODE COMPONENT LEVEL [for=30m] [--json] one component's level, reverting by
//                                                   itself after `for` (else until restart)
// NODE is "broker", "pan", "mnt", or "psn" / "psnN". The node checks the component and the
// level, and refuses bad ones naming the field; `for` is checked here.
#include <iostream>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "cli/command_call.h"
#include "cli/proto_words.h"
#include "cli/role_commands.h"
#include "common/base/proto_time.h"
#include "proto/mailroom/status/v1/status.grpc.pb.h"

namespace mailroom::cli {

const char kLogUsageLines[] = R"(  log show NODE                 a node's log level per component (broker, pan, psn1.., mnt)
  log set NODE COMPONENT LEVEL [for=30m]
                                change a level now; with for=, it reverts by itself
)";

namespace {

namespace sv1 = ::mailroom::status::v1;
using Stub = sv1::NodeStatus::Stub;

// The broker by name, or a sending node (NodeTarget).
absl::StatusOr<Target> AnyNodeTarget(const Admin& admin, const std::string& node) {
  if (node == "broker") return BrokerTarget(admin);
  absl::StatusOr<Target> target = NodeTarget(admin, node);
  if (!target.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown node \"", node, "\" (broker, pan, mnt, psn1..psnN from the config)"));
  }
  return target;
}

// " (reverts at 18:50:10 UTC, in 9m50s)", or "" when the override does not revert.
std::string RevertNote(const sv1::ComponentLogLevel& entry, const google::protobuf::Timestamp& now) {
  if (!entry.has_revert_time()) return entry.overridden() ? " (until the node restarts)" : "";
  return absl::StrCat(" (back to ", entry.configured_level(), " at ",
                      FormatTimestamp(entry.revert_time(), "%Y-%m-%d %H:%M:%S UTC"), ", in ",
                      absl::FormatDuration(absl::Trunc(
                          FromProto(entry.revert_time()) - FromProto(now), absl::Seconds(1))),
                      ")");
}

int Show(const Admin& admin, const Arguments& args) {
  return Report(Call(admin, AnyNodeTarget(admin, args.positional()[0]), &Stub::GetLogLevels,
                     sv1::GetLogLevelsRequest()),
                [](const sv1::GetLogLevelsResponse& response) {
                  std::cout << response.node() << " log levels (default "
                            << response.default_level() << ")\n";
                  for (const sv1::ComponentLogLevel& entry : response.components()) {
                    std::cout << absl::StrFormat("  %-20s %-5s", entry.component(),
                                                 entry.level())
                              << RevertNote(entry, response.time()) << "\n";
                  }
                });
}

int Set(const Admin& admin, const Arguments& args) {
  sv1::SetLogLevelRequest request;
  request.set_component(args.positional()[1]);
  request.set_level(args.positional()[2]);
  if (args.Has("for")) {
    absl::Duration duration;
    const std::string text = args.Get("for");
    if (!absl::ParseDuration(text, &duration) || duration <= absl::ZeroDuration() ||
        duration == absl::InfiniteDuration()) {
      return UsageError(kLogUsageLines,
                        absl::StrCat("for: bad duration \"", text,
                                     "\" (a positive duration such as 30m, 10s or 1h30m)"));
    }
    ToProto(duration, request.mutable_duration());
  }
  const std::string node = args.positional()[0];
  absl::StatusOr<sv1::SetLogLevelResponse> response =
      Call(admin, AnyNodeTarget(admin, node), &Stub::SetLogLevel, request);
  return Report(response, [&](const sv1::SetLogLevelResponse& set) {
    google::protobuf::Timestamp now;
    ToProto(absl::Now(), &now);
    std::cout << node << ": " << set.component().component() << " at "
              << set.component().level() << RevertNote(set.component(), now) << "\n";
  });
}

}  // namespace

const CommandGroup& LogCommands() {
  static const CommandGroup* const group = new CommandGroup{
      {"log"},
      absl::StrCat("usage: mailroomctl --config=ADMIN_CONFIG COMMAND\n", kLogUsageLines),
      {
          {"log show", {{}, {}, {"NODE"}, 1}, Show},
          {"log set", {{"for"}, {}, {"NODE", "COMPONENT", "LEVEL"}, 3}, Set},
      }};
  return *group;
}

}  // namespace mailroom::cli
