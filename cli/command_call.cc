#include "cli/command_call.h"

#include <iostream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace mailroom::cli {
namespace {

absl::StatusOr<Target> Configured(const std::string& name, const std::string& field,
                                  const std::string& address, Role role) {
  if (address.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat(field, " is not set in the admin configuration"));
  }
  return Target{name, address, role};
}

}  // namespace

absl::StatusOr<Target> BrokerTarget(const Admin& admin) {
  return Configured("broker", "broker_target", admin.config.broker_target(), Role::kBroker);
}

absl::StatusOr<Target> PanTarget(const Admin& admin) {
  return Configured("pan", "pan_target", admin.config.pan_target(), Role::kPan);
}

absl::StatusOr<Target> MntTarget(const Admin& admin) {
  return Configured("mnt", "mnt_target", admin.config.mnt_target(), Role::kMnt);
}

std::vector<Target> PsnTargets(const Admin& admin) {
  std::vector<Target> targets;
  for (int i = 0; i < admin.config.psn_targets_size(); ++i) {
    targets.push_back({absl::StrCat("psn", i + 1), admin.config.psn_targets(i), Role::kPsn});
  }
  return targets;
}

absl::StatusOr<Target> NodeTarget(const Admin& admin, const std::string& node) {
  if (node == "pan" && !admin.config.pan_target().empty()) return PanTarget(admin);
  if (node == "mnt" && !admin.config.mnt_target().empty()) return MntTarget(admin);
  const std::vector<Target> psns = PsnTargets(admin);
  if (node.rfind("psn", 0) == 0 && !psns.empty()) {
    int index = 1;
    if (node.size() > 3 && !absl::SimpleAtoi(node.substr(3), &index)) index = 0;
    if (index >= 1 && index <= static_cast<int>(psns.size())) return psns[index - 1];
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown node \"", node, "\" (pan, mnt, psn1..psnN from the config)"));
}

std::vector<Target> ConfiguredTargets(const Admin& admin) {
  std::vector<Target> targets;
  for (const absl::StatusOr<Target>& target : {BrokerTarget(admin), PanTarget(admin)}) {
    if (target.ok()) targets.push_back(*target);
  }
  for (const Target& psn : PsnTargets(admin)) targets.push_back(psn);
  if (absl::StatusOr<Target> mnt = MntTarget(admin); mnt.ok()) targets.push_back(*mnt);
  return targets;
}

void PrintJson(const google::protobuf::Message& message) {
  std::cout << ToJson(message) << "\n";
}

}  // namespace mailroom::cli
