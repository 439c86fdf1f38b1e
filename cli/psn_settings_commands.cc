// mailroomctl `psn-settings` commands: the PSNs' Guest Email Settings. Both go to every PSN
// unless psn=N; `set` reads each PSN's settings, changes what is given and writes them back
// with the etag it read, so a concurrent change is refused rather than overwritten.
#include <iostream>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "cli/psn_common.h"
#include "cli/role_commands.h"

namespace mailroom::cli {
namespace {

namespace pv1 = ::mailroom::psn::v1;

constexpr char kUsage[] = R"(usage (set goes to every PSN unless psn=N):
  psn-settings show            Guest Email Settings of every PSN
  psn-settings set [notifications=on|off] [from=ADDR] [from_name=NAME]
                               read, change, write back with the etag
)";

std::string From(const pv1::GuestEmailSettings& s) {
  return s.default_from().address().empty() ? "(not set)" : s.default_from().address();
}

int Show(const Admin& admin, const Arguments& args) {
  absl::StatusOr<std::vector<Target>> targets = ChoosePsns(admin, args, true);
  if (!targets.ok()) return Fail(targets.status());
  std::set<std::string> etags;
  const int code = ForEachPsn<pv1::GetGuestEmailSettingsResponse>(
      *targets,
      [&](const Target& target) {
        return Call(admin, target, &PsnStub::GetGuestEmailSettings, {});
      },
      [&etags](const Target& target, const pv1::GetGuestEmailSettingsResponse& response) {
        const pv1::GuestEmailSettings& s = response.settings();
        etags.insert(s.etag());
        std::cout << target.name << " (" << target.address << ")\n"
                  << "  Email notifications to guests: "
                  << (s.notifications_enabled() ? "enabled" : "DISABLED") << "\n"
                  << "  Default 'From' address:        " << From(s);
        if (!s.default_from().display_name().empty()) {
          std::cout << " (" << s.default_from().display_name() << ")";
        }
        std::cout << "\n  etag " << s.etag()
                  << (s.has_update_time() ? absl::StrCat(", saved ", PsnTime(s.update_time()))
                                          : std::string(", from the node config"))
                  << "\n";
      });
  if (etags.size() > 1) {
    std::cout << "WARNING: the PSNs' settings differ; run `psn-settings set` to align them.\n";
  }
  return code;
}

// Reads the PSN's settings, applies the options, writes them back with the etag read.
absl::StatusOr<pv1::SetGuestEmailSettingsResponse> ReadChangeWrite(const Admin& admin,
                                                                   const Target& target,
                                                                   const Arguments& args) {
  MR_ASSIGN_OR_RETURN(const pv1::GetGuestEmailSettingsResponse current,
                      Call(admin, target, &PsnStub::GetGuestEmailSettings, {}));
  pv1::SetGuestEmailSettingsRequest request;
  pv1::GuestEmailSettings* s = request.mutable_settings();
  *s = current.settings();
  request.set_etag(current.settings().etag());
  if (args.Has("notifications")) s->set_notifications_enabled(args.Get("notifications") == "on");
  if (args.Has("from")) s->mutable_default_from()->set_address(args.Get("from"));
  if (args.Has("from_name")) s->mutable_default_from()->set_display_name(args.Get("from_name"));
  return Call(admin, target, &PsnStub::SetGuestEmailSettings, request);
}

int Set(const Admin& admin, const Arguments& args) {
  if (args.Has("notifications") && args.Get("notifications") != "on" &&
      args.Get("notifications") != "off") {
    return Fail(absl::InvalidArgumentError("notifications=: expected on or off"));
  }
  absl::StatusOr<std::vector<Target>> targets = ChoosePsns(admin, args, true);
  if (!targets.ok()) return Fail(targets.status());
  return ForEachPsn<pv1::SetGuestEmailSettingsResponse>(
      *targets, [&](const Target& target) { return ReadChangeWrite(admin, target, args); },
      [](const Target& target, const pv1::SetGuestEmailSettingsResponse& response) {
        const pv1::GuestEmailSettings& s = response.settings();
        std::cout << target.name << " (" << target.address << "): saved; notifications "
                  << (s.notifications_enabled() ? "enabled" : "disabled") << ", from " << From(s)
                  << ", etag " << s.etag() << "\n";
      });
}

}  // namespace

const CommandGroup& PsnSettingsCommands() {
  static const CommandGroup* const group = new CommandGroup{
      {"psn-settings"},
      kUsage,
      {
          {"psn-settings show", {{"psn"}}, Show},
          {"psn-settings set", {{"psn", "notifications", "from", "from_name"}}, Set},
      }};
  return *group;
}

}  // namespace mailroom::cli
