// Issue 12's acceptance for role nodes following the broker leader: a real three-member etcd,
// two real mailroom-broker processes elected through it (TTL 3 s), two real mailroom-psn
// processes that name both brokers in broker_targets, and the testbed's MTA with MtaMeter
// attached (tests/testing/ha_mail_cluster.h). A paced burst of guest self-registrations goes
// through the PSNs' gRPC API; the leading broker is killed with SIGKILL mid-burst. A standby
// leads within 5 s, every acknowledged registration reaches the mailbox (counted in the
// Maildir, not by mailroom), the MTA never sees more than the mailbox's limits (messages in
// any rolling 60 s, sessions at once), and the brokers' leader gauges never say both lead: the
// ledger in etcd carries the rolling minute over the failover, and the PSNs find the new leader
// themselves. Twice: 40 messages at 20 a minute and 2 connections (as the MTA limits test),
// and the 300 at 120 a minute and 3 connections.
#include <cstdlib>
#include <iostream>
#include <map>
#include <memory>
#include <string>

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

// A burst through the PSNs against the mailbox's limits, and the kill -9 of the leader once half
// of it is acknowledged, when both PSNs are taking registrations and sending.
struct Scenario {
  int per_minute;
  int connections;
  int requests;
  int threads_per_psn;
  absl::Duration pace;  // between two registrations of one portal thread
};

constexpr absl::Duration kTtl = absl::Seconds(3);
// Issue 12: a standby leads within 5 s of the leader's kill -9.
constexpr absl::Duration kFailoverBound = absl::Seconds(5);

void RunKillNineMidBurst(const Scenario& scenario, const std::string& tag) {
  const absl::Time began = absl::Now();
  HaMailClusterOptions options;
  options.dir = absl::StrCat(std::getenv("TEST_TMPDIR"), "/", tag);
  options.messages_per_minute = scenario.per_minute;
  options.connections = scenario.connections;
  options.ttl = kTtl;
  absl::StatusOr<std::unique_ptr<HaMailCluster>> started = HaMailCluster::Start(options);
  ASSERT_TRUE(started.ok()) << started.status();
  HaMailCluster& cluster = **started;
  ASSERT_EQ(cluster.broker(0).Health(), HealthCheckResponse::SERVING);
  ASSERT_EQ(cluster.broker(1).Health(), HealthCheckResponse::NOT_SERVING);
  LeaderWatch& watch = cluster.watch();

  const std::string to = absl::StrCat(tag, "@example.test");
  const absl::Time burst_began = absl::Now();
  GuestBurst burst(cluster.psns(), tag, to, scenario.requests, scenario.threads_per_psn,
                   scenario.pace);
  for (const absl::Time deadline = absl::Now() + absl::Seconds(60);
       burst.answered() < scenario.requests / 2 && absl::Now() < deadline;) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  const size_t arrived_at_kill = cluster.meter().Arrivals(cluster.mailbox()).size();
  const HaMailCluster::Takeover takeover = cluster.KillLeader();
  ASSERT_EQ(takeover.killed, 0) << "broker0 no longer led";
  burst.Join();
  // A registration the PSN could not acknowledge is the portal's to retry.
  const size_t unacked_at_first = burst.unacked().size();
  ASSERT_TRUE(burst.RetryUnacked(absl::Seconds(20)).ok());
  const std::map<int, std::string> acked = burst.acked();
  ASSERT_EQ(acked.size(), static_cast<size_t>(scenario.requests));

  const MtaCount count = cluster.Count(to, acked, absl::Seconds(600));
  int after_kill = 0;
  for (absl::Time t : count.arrivals) after_kill += t > takeover.at;
  std::cout << scenario.requests << " registrations via psn1 and psn2 (broker_targets naming "
            << "both brokers), the leading broker killed with SIGKILL "
            << absl::FormatDuration(takeover.at - burst_began) << " into the burst ("
            << arrived_at_kill << " at the MTA then); the standby led after "
            << absl::FormatDuration(takeover.after) << " (TTL " << kTtl << "); "
            << unacked_at_first << " registrations retried; " << count.arrivals.size()
            << " messages from " << cluster.mailbox() << " at the MTA (" << after_kill
            << " after the kill; " << count.distinct << " distinct in the Maildir, "
            << scenario.requests - count.lost << " of " << scenario.requests
            << " acknowledged delivered, " << count.lost
            << " lost); at the MTA: most in any rolling 60 s = " << count.most_in_minute
            << " (limit " << scenario.per_minute << "), most sessions at once = "
            << count.most_sessions << " (limit " << scenario.connections
            << "); leader gauges: two leading in " << watch.overlapping_sweeps() << " of "
            << watch.sweeps() << " sweeps; offline-allowance batches in the PSNs' logs: "
            << cluster.OfflineBatches() << "; arrivals per 10 s from the burst: "
            << ArrivalsPerTenSeconds(count.arrivals, burst_began) << "; test ran "
            << absl::FormatDuration(absl::Now() - began) << std::endl;
  EXPECT_LT(takeover.after, kFailoverBound);
  EXPECT_EQ(count.lost, 0);
  EXPECT_LE(count.most_in_minute, scenario.per_minute);
  EXPECT_LE(count.most_sessions, scenario.connections);
  EXPECT_EQ(watch.overlapping_sweeps(), 0);
}

// 20 messages a minute and 2 connections, as the MTA limits test uses; two minutes of the
// mailbox's rate, so that the failover falls inside a minute whose quota the killed leader had
// already spent in part, and the rest waits on the new leader's ledger. A registration a second
// per portal thread: the burst lasts about 10 s.
TEST(BrokerFailoverE2eTest, RoleNodesFollowTheNewLeaderWithinTheLimitsAfterKillNine) {
  RunKillNineMidBurst({20, 2, 40, 2, absl::Seconds(1)}, "failover");
}

// Issue 12's figure: 300 messages, with Exchange's limits (120 a minute at the endpoint of the
// issue's measurement, 3 connections); the burst is taken in about 15 s and drains over more
// than two minutes, so the kill lands while the PSNs send at the rate.
TEST(BrokerFailoverE2eTest, AllOfAThreeHundredMessageBurstArriveWithinTheLimitsAfterKillNine) {
  RunKillNineMidBurst({120, 3, 300, 3, absl::Milliseconds(300)}, "burst300");
}

}  // namespace
}  // namespace mailroom
