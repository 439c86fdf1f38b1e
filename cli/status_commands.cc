// mailroomctl status: one screen for the whole cluster. Every node of the admin
// configuration is probed at once (gRPC health, then NodeStatus, each within kProbeTimeout),
// and the MnT's active alarms are listed; a node that does not answer is shown DOWN with the
// error and the rest is still shown. The result is one ClusterStatus message (--json prints
// it with protobuf's JSON mapping); the exit status is 1 when anything needs an admin
// (cli/status_format.h says what does), else 0.
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "cli/command_call.h"
#include "cli/role_commands.h"
#include "cli/status_format.h"
#include "common/base/proto_time.h"
#include "proto/mailroom/mnt/v1/mnt.grpc.pb.h"
#include "proto/mailroom/status/v1/status.grpc.pb.h"
#include "third_party/grpc_health/health.grpc.pb.h"

namespace mailroom::cli {

const char kStatusUsageLines[] = R"(  status                        the whole cluster on one screen: health, version, outbox,
                                token, quota, credential, alarms, last errors, latency;
                                exit 1 when anything needs an admin
)";

namespace {

namespace mv1 = ::mailroom::mnt::v1;
namespace sv1 = ::mailroom::status::v1;
using HealthStub = ::grpc::health::v1::Health::Stub;
using ::grpc::health::v1::HealthCheckResponse;

sv1::NodeReport Probe(const Admin& admin, const Target& target) {
  sv1::NodeReport report;
  report.set_name(target.name);
  report.set_address(target.address);
  absl::StatusOr<HealthCheckResponse> health =
      Call(admin, target, &HealthStub::Check, {}, kProbeTimeout);
  if (!health.ok()) {
    report.set_health(sv1::NODE_HEALTH_DOWN);
    report.set_error(std::string(health.status().message()));
    return report;
  }
  report.set_health(health->status() == HealthCheckResponse::SERVING
                        ? sv1::NODE_HEALTH_SERVING
                        : sv1::NODE_HEALTH_NOT_SERVING);
  absl::StatusOr<sv1::GetNodeStatusResponse> status =
      Call(admin, target, &sv1::NodeStatus::Stub::GetNodeStatus, {}, kProbeTimeout);
  if (status.ok()) {
    *report.mutable_status() = *std::move(status);
  } else {
    report.set_error(absl::StrCat("status: ", status.status().message()));
  }
  return report;
}

// Brokers standing by while another leads are shown as STANDBY, which needs no admin.
void MarkStandbyBrokers(const std::vector<Target>& targets, std::vector<sv1::NodeReport>* reports) {
  std::vector<bool> serving;
  for (const sv1::NodeReport& report : *reports) {
    serving.push_back(report.health() == sv1::NODE_HEALTH_SERVING);
  }
  const std::vector<bool> standby = StandbyBrokers(targets, serving);
  for (size_t i = 0; i < targets.size(); ++i) {
    // Only one that answered (NOT_SERVING): a broker that is DOWN stays DOWN.
    if (standby[i] && (*reports)[i].health() == sv1::NODE_HEALTH_NOT_SERVING) {
      (*reports)[i].set_health(sv1::NODE_HEALTH_STANDBY);
    }
  }
}

void ListActiveAlarms(const Admin& admin, sv1::ClusterStatus* status) {
  if (admin.config.mnt_target().empty()) return;
  mv1::ListAlarmsRequest request;
  request.add_states(mv1::ALARM_STATE_ACTIVE);
  absl::StatusOr<mv1::ListAlarmsResponse> alarms =
      CallAllPages(admin, MntTarget(admin), &mv1::Alarms::Stub::ListAlarms, request);
  if (!alarms.ok()) {
    status->set_alarms_error(std::string(alarms.status().message()));
    return;
  }
  status->set_alarms_listed(true);
  *status->mutable_active_alarms() = alarms->alarms();
}

int ShowClusterStatus(const Admin& admin, const Arguments&) {
  sv1::ClusterStatus status;
  ToProto(absl::Now(), status.mutable_time());
  const std::vector<Target> targets = ConfiguredTargets(admin);
  if (targets.empty()) {
    return Fail(absl::FailedPreconditionError("the admin configuration names no node"));
  }
  // Every node at once, so that a hung one costs one probe timeout, not one each.
  std::vector<sv1::NodeReport> reports(targets.size());
  std::vector<std::thread> probes;
  for (size_t i = 0; i < targets.size(); ++i) {
    probes.emplace_back([&, i] { reports[i] = Probe(admin, targets[i]); });
  }
  ListActiveAlarms(admin, &status);
  for (std::thread& probe : probes) probe.join();
  MarkStandbyBrokers(targets, &reports);
  for (sv1::NodeReport& report : reports) *status.add_nodes() = std::move(report);
  for (std::string& line : AttentionOf(status)) status.add_attention(std::move(line));
  if (JsonOutput()) {
    PrintJson(status);
  } else {
    std::cout << FormatClusterStatus(status);
  }
  return status.attention().empty() ? kExitOk : kExitFailed;
}

}  // namespace

const CommandGroup& StatusCommands() {
  static const CommandGroup* const group = new CommandGroup{
      {"status"},
      absl::StrCat("usage: mailroomctl --config=ADMIN_CONFIG [--json] COMMAND\n",
                   kStatusUsageLines),
      {
          {"status", {}, ShowClusterStatus},
      }};
  return *group;
}

}  // namespace mailroom::cli
