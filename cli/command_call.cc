#include "cli/command_call.h"

#include <iostream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "third_party/grpc_health/health.grpc.pb.h"

namespace mailroom::cli {
namespace {

using HealthStub = ::grpc::health::v1::Health::Stub;
using ::grpc::health::v1::HealthCheckResponse;

absl::StatusOr<Target> Configured(const std::string& name, const std::string& field,
                                  const std::string& address, Role role) {
  if (address.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat(field, " is not set in the admin configuration"));
  }
  return Target{name, address, role};
}

}  // namespace

std::vector<Target> BrokerTargets(const Admin& admin) {
  std::vector<Target> targets;
  if (!admin.config.broker_target().empty()) {
    targets.push_back({"broker", admin.config.broker_target(), Role::kBroker});
  }
  for (int i = 0; i < admin.config.broker_targets_size(); ++i) {
    targets.push_back({admin.config.broker_targets_size() == 1 ? std::string("broker")
                                                               : absl::StrCat("broker", i + 1),
                       admin.config.broker_targets(i), Role::kBroker});
  }
  return targets;
}

absl::StatusOr<Target> BrokerTarget(const Admin& admin) {
  const std::vector<Target> brokers = BrokerTargets(admin);
  if (brokers.empty()) {
    return Configured("broker", "broker_target", "", Role::kBroker);
  }
  if (brokers.size() == 1) return brokers[0];
  // Several brokers: the one whose health is SERVING leads (a standby is NOT_SERVING).
  std::vector<std::string> found;
  for (const Target& broker : brokers) {
    absl::StatusOr<HealthCheckResponse> health =
        Call(admin, broker, &HealthStub::Check, {}, kProbeTimeout);
    if (health.ok() && health->status() == HealthCheckResponse::SERVING) return broker;
    found.push_back(absl::StrCat(broker.name, " ", broker.address, ": ",
                                 health.ok() ? "standing by" : health.status().message()));
  }
  return absl::UnavailableError(
      absl::StrCat("no broker leads (", absl::StrJoin(found, "; "), ")"));
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

std::vector<bool> StandbyBrokers(const std::vector<Target>& targets,
                                 const std::vector<bool>& serving) {
  bool a_broker_leads = false;
  for (size_t i = 0; i < targets.size(); ++i) {
    a_broker_leads = a_broker_leads || (targets[i].role == Role::kBroker && serving[i]);
  }
  std::vector<bool> standby(targets.size(), false);
  for (size_t i = 0; i < targets.size(); ++i) {
    standby[i] = a_broker_leads && targets[i].role == Role::kBroker && !serving[i];
  }
  return standby;
}

std::vector<Target> ConfiguredTargets(const Admin& admin) {
  std::vector<Target> targets;
  targets = BrokerTargets(admin);
  if (absl::StatusOr<Target> pan = PanTarget(admin); pan.ok()) targets.push_back(*pan);
  for (const Target& psn : PsnTargets(admin)) targets.push_back(psn);
  if (absl::StatusOr<Target> mnt = MntTarget(admin); mnt.ok()) targets.push_back(*mnt);
  return targets;
}

void PrintJson(const google::protobuf::Message& message) {
  std::cout << ToJson(message) << "\n";
}

}  // namespace mailroom::cli
