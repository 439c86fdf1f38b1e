// Figures for issue 12, run by bench/ha_failover.sh (tagged manual: not in the suite, they take
// long). Everything real, as in broker_failover_e2e_test: a three-member etcd, two elected
// mailroom-broker processes (TTL 3 s), two mailroom-psn processes naming both, the testbed's MTA
// with MtaMeter attached, Exchange's limits of the measurement (120 messages a minute,
// 3 connections). They print figures; they also fail on a lost message or a violation counted
// at the MTA, so that a bad run is not mistaken for a figure.
//   TakeoverTimes: BENCH_KILLS (20) kill -9s of whichever broker leads, each once the other has
//     stood by again, while BENCH_REQUESTS (300) registrations go through the PSNs; the
//     takeover times' min/p50/p90/max.
//   PsnKill: the measurement, once a run (bazel --runs_per_test repeats it): 200
//     registrations through two PSNs, psn2 killed with kill -9 three seconds after the burst was
//     acknowledged and started again 10 s later; the most the MTA saw in a rolling 60 s.
#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/testing/guest_burst.h"
#include "tests/testing/ha_mail_cluster.h"
#include "third_party/grpc_health/health.grpc.pb.h"

namespace mailroom {
namespace {

using ::grpc::health::v1::HealthCheckResponse;
using ::mailroom::testing::ArrivalsPerTenSeconds;
using ::mailroom::testing::GuestBurst;
using ::mailroom::testing::HaMailCluster;
using ::mailroom::testing::HaMailClusterOptions;
using ::mailroom::testing::LeaderWatch;
using ::mailroom::testing::MtaCount;

constexpr int kPerMinute = 120;
constexpr int kConnections = 3;

int EnvInt(const char* name, int fallback) {
  int value = 0;
  const char* text = std::getenv(name);
  return text != nullptr && absl::SimpleAtoi(text, &value) && value > 0 ? value : fallback;
}

std::unique_ptr<HaMailCluster> StartCluster() {
  HaMailClusterOptions options;
  options.messages_per_minute = kPerMinute;
  options.connections = kConnections;
  absl::StatusOr<std::unique_ptr<HaMailCluster>> cluster = HaMailCluster::Start(options);
  EXPECT_TRUE(cluster.ok()) << cluster.status();
  return cluster.ok() ? *std::move(cluster) : nullptr;
}

// "<what>: ... at the MTA ..." (one line the script greps), then the expectations.
void ReportAndCheck(HaMailCluster& cluster, GuestBurst& burst, const std::string& to,
                    int requests, absl::Time burst_began, const std::string& what) {
  burst.Join();
  ASSERT_TRUE(burst.RetryUnacked(absl::Seconds(20)).ok());
  const std::map<int, std::string> acked = burst.acked();
  ASSERT_EQ(acked.size(), static_cast<size_t>(requests));
  const MtaCount count = cluster.Count(to, acked, absl::Seconds(900));
  std::cout << what << "; at the MTA: " << count.arrivals.size() << " messages, "
            << requests - count.lost << " of " << requests << " delivered, " << count.lost
            << " lost, most in any rolling 60 s = " << count.most_in_minute << " (limit "
            << kPerMinute << "), most sessions at once = " << count.most_sessions << " (limit "
            << kConnections << "); offline-allowance batches in the PSNs' logs: "
            << cluster.OfflineBatches() << "; arrivals per 10 s: "
            << ArrivalsPerTenSeconds(count.arrivals, burst_began) << std::endl;
  // The nodes' and brokers' logs, for a run to be looked into (bazel keeps them in the test's
  // outputs.zip).
  if (const char* outputs = std::getenv("TEST_UNDECLARED_OUTPUTS_DIR"); outputs != nullptr) {
    std::system(absl::StrCat("cd '", cluster.options().dir, "' && tar czf '", outputs,
                             "/logs.tar.gz' psn*/node.log broker*/broker.log 2>/dev/null")
                    .c_str());
  }
  EXPECT_EQ(count.lost, 0);
  EXPECT_LE(count.most_in_minute, kPerMinute);
  EXPECT_LE(count.most_sessions, kConnections);
}

TEST(BrokerHaBench, TakeoverTimes) {
  const int kills = EnvInt("BENCH_KILLS", 20);
  const int requests = EnvInt("BENCH_REQUESTS", 300);
  std::unique_ptr<HaMailCluster> cluster = StartCluster();
  ASSERT_NE(cluster, nullptr);
  LeaderWatch& watch = cluster->watch();
  const std::string to = "takeover@example.test";
  const absl::Time burst_began = absl::Now();
  // Spread over about a minute, so that the kills land while registrations come in and go out.
  GuestBurst burst(cluster->psns(), "takeover", to, requests, 2,
                   absl::Milliseconds(60000 * 4 / requests));
  std::vector<absl::Duration> takeovers;
  for (int i = 0; i < kills; ++i) {
    const HaMailCluster::Takeover takeover = cluster->KillLeader();
    ASSERT_GE(takeover.leader, 0) << "kill " << i + 1 << ": no broker took over";
    takeovers.push_back(takeover.after);
    std::cout << "kill " << i + 1 << ": broker" << takeover.killed << " killed "
              << absl::FormatDuration(takeover.at - burst_began) << " into the burst, broker"
              << takeover.leader << " led after " << takeover.after << std::endl;
    ASSERT_TRUE(cluster->broker(takeover.killed).Restart().ok());
    // Stood by again (and named the leader) before the next kill, as a restarted node would.
    for (const absl::Time deadline = absl::Now() + absl::Seconds(10);
         cluster->broker(takeover.killed).Health() != HealthCheckResponse::NOT_SERVING &&
         absl::Now() < deadline;) {
      absl::SleepFor(absl::Milliseconds(50));
    }
    absl::SleepFor(absl::Seconds(2));
  }
  std::sort(takeovers.begin(), takeovers.end());
  auto at = [&](double q) {
    return takeovers[std::min(takeovers.size() - 1,
                              static_cast<size_t>(q * static_cast<double>(takeovers.size())))];
  };
  ReportAndCheck(*cluster, burst, to, requests, burst_began,
                 absl::StrCat("takeover after kill -9 of the leader, ", kills,
                              " kills (TTL 3 s): min ", absl::FormatDuration(takeovers.front()),
                              " p50 ", absl::FormatDuration(at(0.5)), " p90 ",
                              absl::FormatDuration(at(0.9)), " max ",
                              absl::FormatDuration(takeovers.back()), "; ", requests,
                              " registrations meanwhile; two brokers leading in ",
                              watch.overlapping_sweeps(), " of ", watch.sweeps(),
                              " gauge sweeps"));
  EXPECT_EQ(watch.overlapping_sweeps(), 0);
  EXPECT_LT(takeovers.back(), absl::Seconds(5));
}

TEST(BrokerHaBench, PsnKill) {
  constexpr int kRequests = 200;
  std::unique_ptr<HaMailCluster> cluster = StartCluster();
  ASSERT_NE(cluster, nullptr);
  const std::string to = "psn-kill@example.test";
  const absl::Time burst_began = absl::Now();
  // As fast as the portals go: 8 threads without a pause.
  GuestBurst burst(cluster->psns(), "psnkill", to, kRequests, 4, absl::ZeroDuration());
  burst.Join();
  absl::SleepFor(absl::Seconds(3));
  const absl::Duration kill_at = absl::Now() - burst_began;
  cluster->psn(1).Kill();
  absl::SleepFor(absl::Seconds(10));
  ASSERT_TRUE(cluster->psn(1).Restart().ok());
  ReportAndCheck(*cluster, burst, to, kRequests, burst_began,
                 absl::StrCat(kRequests, " registrations via psn1 and psn2, psn2 killed with "
                              "SIGKILL ", absl::FormatDuration(kill_at),
                              " after the burst began (3 s after it was acknowledged), "
                              "started again 10 s later"));
}

}  // namespace
}  // namespace mailroom
