// mailroomctl commands about every node: gRPC health of the configured nodes, and one
// node's Prometheus metrics (over plain HTTP from the metrics port; no --config needed).
#include <iostream>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <curl/curl.h>

#include "absl/flags/flag.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "cli/command_call.h"
#include "cli/role_commands.h"
#include "cli/status_format.h"
#include "proto/mailroom/status/v1/status.grpc.pb.h"
#include "third_party/grpc_health/health.grpc.pb.h"

ABSL_FLAG(std::string, url, "", "A node's metrics URL, e.g. http://127.0.0.1:9100/metrics.");
ABSL_FLAG(bool, live, false,
          "health: pass for every node that answers at all (SERVING or not), and ask no "
          "broker for its election: a probe of a broker pod, which stands by NOT_SERVING "
          "while another broker leads.");

namespace mailroom::cli {

const char kNodeUsageLines[] = R"(  health                        health of every configured node; with elected brokers,
                                which leads since when, and etcd's health;
                                --live: every node that answers passes (probes)
  metrics --url=URL             a node's metrics (queue depth, sends, tokens)
)";

namespace {

namespace sv1 = ::mailroom::status::v1;
using HealthStub = ::grpc::health::v1::Health::Stub;
using ::grpc::health::v1::HealthCheckResponse;

int HealthAll(const Admin& admin, const Arguments&) {
  const std::vector<Target> targets = ConfiguredTargets(admin);
  std::vector<absl::StatusOr<HealthCheckResponse>> answers;
  std::vector<bool> serving;
  for (const Target& target : targets) {
    answers.push_back(Call(admin, target, &HealthStub::Check, {}, kProbeTimeout));
    serving.push_back(answers.back().ok() &&
                      answers.back()->status() == HealthCheckResponse::SERVING);
  }
  const std::vector<bool> standby = StandbyBrokers(targets, serving);
  const bool live = absl::GetFlag(FLAGS_live);
  int failures = 0;
  // Brokers elected through etcd that told their part (only to an admin certificate). A
  // --live probe does not ask: it runs with the node's own certificate, and each refusal
  // would be a warning in the broker's log every probe period.
  std::vector<std::pair<std::string, sv1::BrokerElection>> elections;
  for (size_t i = 0; i < targets.size(); ++i) {
    const absl::StatusOr<HealthCheckResponse>& response = answers[i];
    // A standby answered NOT_SERVING while another broker leads: as it should be. A broker
    // that did not answer at all stays DOWN.
    const bool standing_by = standby[i] && response.ok();
    if (!serving[i] && !standing_by && !(live && response.ok())) ++failures;
    std::string election;
    if (!live && targets[i].role == Role::kBroker && response.ok()) {
      absl::StatusOr<sv1::GetNodeStatusResponse> status = Call(
          admin, targets[i], &sv1::NodeStatus::Stub::GetNodeStatus, {}, kProbeTimeout);
      if (status.ok() && status->broker().has_election()) {
        election = absl::StrCat(", ", ElectionText(status->broker().election(), status->time()));
        elections.emplace_back(targets[i].name, status->broker().election());
      }
    }
    std::cout << targets[i].name << " " << targets[i].address << ": "
              << (serving[i]    ? std::string("SERVING")
                  : standing_by ? std::string("STANDBY")
                  : response.ok()
                      ? std::string("NOT_SERVING")
                      : absl::StrCat("DOWN (", response.status().message(), ")"))
              << election << "\n";
  }
  // etcd member by member as the leader sees it (or the first broker, with none leading).
  size_t detailed = 0;
  for (size_t i = 0; i < elections.size(); ++i) {
    if (elections[i].second.leading()) detailed = i;
  }
  for (size_t i = 0; i < elections.size(); ++i) {
    const auto& [broker, election] = elections[i];
    std::cout << FormatEtcdHealth(broker, election.etcd(), i == detailed);
    failures += EtcdAttentionOf(broker, election.etcd()).size();
  }
  return failures == 0 ? kExitOk : kExitFailed;
}

size_t AppendBody(char* data, size_t size, size_t count, void* out) {
  static_cast<std::string*>(out)->append(data, size * count);
  return size * count;
}

// Shows a node's Prometheus metrics for a person: one line per sample, histogram buckets
// folded into a count and a mean.
int ShowMetrics(const Admin&, const Arguments&) {
  const std::string url = absl::GetFlag(FLAGS_url);
  if (url.empty()) {
    std::cerr << "mailroomctl: metrics needs --url=http://HOST:PORT/metrics\n";
    return kExitUsage;
  }
  CURL* curl = curl_easy_init();
  std::string body;
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, AppendBody);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT, 10L);
  const CURLcode code = curl_easy_perform(curl);
  curl_easy_cleanup(curl);
  if (code != CURLE_OK) {
    std::cerr << "mailroomctl: cannot fetch " << url << ": " << curl_easy_strerror(code) << "\n";
    return kExitFailed;
  }
  if (JsonOutput()) {
    std::cout << body;
    return kExitOk;
  }
  std::map<std::string, double> sums;
  for (absl::string_view line : absl::StrSplit(body, '\n', absl::SkipEmpty())) {
    if (line[0] == '#' || absl::StrContains(line, "_bucket{")) continue;
    const size_t space = line.rfind(' ');
    const std::string name(line.substr(0, space));
    if (absl::StrContains(name, "_sum")) {
      double value = 0;
      absl::SimpleAtod(line.substr(space + 1), &value);
      sums[absl::StrReplaceAll(name, {{"_sum", ""}})] = value;
      continue;
    }
    if (absl::StrContains(name, "_count")) {
      double count = 0;
      absl::SimpleAtod(line.substr(space + 1), &count);
      const std::string base = absl::StrReplaceAll(name, {{"_count", ""}});
      std::cout << base << "  count " << count << ", mean "
                << (count > 0 ? sums[base] / count * 1000 : 0) << " ms\n";
      continue;
    }
    std::cout << name << "  " << line.substr(space + 1) << "\n";
  }
  return kExitOk;
}

}  // namespace

const CommandGroup& NodeCommands() {
  static const CommandGroup* const group = new CommandGroup{
      {"health", "metrics"},
      absl::StrCat("usage: mailroomctl --config=ADMIN_CONFIG COMMAND\n", kNodeUsageLines),
      {
          {"health", {}, HealthAll},
          {"metrics", {}, ShowMetrics, /*needs_admin=*/false},
      }};
  return *group;
}

}  // namespace mailroom::cli
