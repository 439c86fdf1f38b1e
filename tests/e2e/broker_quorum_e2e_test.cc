// Issue 12's acceptance when etcd loses quorum: two real brokers elected through a real
// three-member etcd (TTL 3 s; 20 messages a minute and 2 connections), two real mailroom-psn
// processes naming both brokers, the testbed's MTA with MtaMeter attached. Early in a burst,
// while the minute has room, two of the three etcd members are stopped (SIGSTOP: hung hosts). The leader can no
// longer write its ledger nor renew, stops granting at once and leads no more within its lease
// (its mailroom_broker_leader gauge drops, and no broker leads until quorum returns); the PSNs
// take that as an election and wait out leaderless_grace, then send on the offline allowance,
// which the MTA counts (nothing before the grace, no more than 10 a node in any rolling
// minute); once the members are back a broker leads again and every acknowledged registration
// reaches the mailbox. The offline allowance is outside the ledger: the most in a rolling
// minute across the outage is printed, not held to the limit.
#include <cstdlib>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/testing/guest_burst.h"
#include "tests/testing/ha_mail_cluster.h"
#include "tests/testing/rolling_window.h"

namespace mailroom {
namespace {

using ::mailroom::testing::ArrivalsPerTenSeconds;
using ::mailroom::testing::GuestBurst;
using ::mailroom::testing::HaMailCluster;
using ::mailroom::testing::LeaderWatch;
using ::mailroom::testing::MostInWindow;
using ::mailroom::testing::MtaCount;

constexpr int kPerMinute = 20;
constexpr absl::Duration kTtl = absl::Seconds(3);
constexpr int kRequests = 40;
// Quorum goes once this many have arrived: the minute has room left, so the PSNs are asking the
// leader for permits when it can no longer write its ledger.
constexpr int kArrivedAtOutage = 4;
// DeliveryOptions' defaults, which the PSNs run with.
constexpr int kOfflinePerMinute = 10;
constexpr absl::Duration kLeaderlessGrace = absl::Seconds(15);
// Long enough for the grace and a full minute of the offline allowance.
constexpr absl::Duration kOutage = absl::Seconds(80);

TEST(BrokerQuorumE2eTest, LeaderStopsWithoutQuorumNodesSendTheAllowanceAndNothingIsLost) {
  const absl::Time began = absl::Now();
  // 20 messages a minute, 2 connections, TTL 3 s: HaMailClusterOptions' defaults.
  absl::StatusOr<std::unique_ptr<HaMailCluster>> started = HaMailCluster::Start({});
  ASSERT_TRUE(started.ok()) << started.status();
  HaMailCluster& cluster = **started;
  LeaderWatch& watch = cluster.watch();

  const std::string to = "broker-quorum@example.test";
  const absl::Time burst_began = absl::Now();
  // About 20 s of registrations: they keep coming in through the leaderless grace.
  GuestBurst burst(cluster.psns(), "quorum", to, kRequests, /*threads_per_psn=*/1,
                   absl::Seconds(1));
  for (const absl::Time deadline = absl::Now() + absl::Seconds(60);
       cluster.meter().Arrivals(cluster.mailbox()).size() < kArrivedAtOutage &&
       absl::Now() < deadline;) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  const int leader = cluster.Leader();
  ASSERT_GE(leader, 0) << "no broker leads before the outage";
  const absl::Time lost_quorum = absl::Now();
  const size_t arrived_before = cluster.meter().Arrivals(cluster.mailbox()).size();
  // Stopped with SIGSTOP, as hung hosts: their connections hang instead of being refused, and
  // the survivor, without quorum, cannot commit. Every etcd request of the brokers runs out of
  // time (DEADLINE_EXCEEDED), as it does for a leader cut off from etcd.
  cluster.etcd().Freeze(0);
  cluster.etcd().Freeze(1);

  // The leader's gauge drops once its term runs out: the last renewal plus TTL minus margin.
  absl::Duration stopped_after = absl::InfiniteDuration();
  while (absl::Now() < lost_quorum + absl::Seconds(15)) {
    if (cluster.Leader() < 0) {
      stopped_after = absl::Now() - lost_quorum;
      break;
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  burst.Join();
  const int sweeps_before_outage_end = watch.sweeps();
  const int leaderless_at_stop = watch.leaderless_sweeps();
  absl::SleepFor(lost_quorum + kOutage - absl::Now());
  const int leaderless_in_outage = watch.leaderless_sweeps() - leaderless_at_stop;
  const int sweeps_in_outage = watch.sweeps() - sweeps_before_outage_end;
  const absl::Time quorum_back = absl::Now();
  cluster.etcd().Thaw(0);
  cluster.etcd().Thaw(1);
  ASSERT_TRUE(cluster.etcd().AwaitHealthy().ok());
  const int new_leader = cluster.AwaitAnyLeader(absl::Seconds(20));
  const absl::Duration leads_again_after = absl::Now() - quorum_back;
  ASSERT_TRUE(burst.RetryUnacked(absl::Seconds(20)).ok());
  const std::map<int, std::string> acked = burst.acked();
  ASSERT_EQ(acked.size(), static_cast<size_t>(kRequests));

  const MtaCount count = cluster.Count(to, acked, absl::Seconds(300));
  // What the MTA took while no broker could lead: only the offline allowance.
  std::vector<absl::Time> in_outage;
  for (absl::Time t : count.arrivals) {
    if (t > lost_quorum + stopped_after && t < quorum_back) in_outage.push_back(t);
  }
  const int most_in_outage_minute = MostInWindow(in_outage, absl::Seconds(60));
  // The nodes wait out the grace from their first NOT_LEADER, which comes no earlier than the
  // outage (a second off the grace for the gauge's polling). What was permitted before went
  // out before the term ended: anything after that and before the grace is offline.
  int before_grace = 0;
  for (absl::Time t : in_outage) {
    before_grace += t < lost_quorum + kLeaderlessGrace - absl::Seconds(1);
  }
  // The PSNs' own word for when they sent without a permit: never before the grace that
  // follows the first NOT_LEADER, which comes no earlier than the outage.
  int offline_before_grace = 0;
  for (absl::Time t : cluster.OfflineBatchTimes()) {
    offline_before_grace += t < lost_quorum + kLeaderlessGrace - absl::Seconds(1);
  }
  std::cout << kRequests << " registrations via psn1 and psn2; etcd members 0 and 1 stopped (SIGSTOP) "
            << absl::FormatDuration(lost_quorum - burst_began) << " into the burst ("
            << arrived_before << " at the MTA then); broker" << leader
            << " stopped leading after " << absl::FormatDuration(stopped_after) << " (TTL "
            << kTtl << "); no broker led in " << leaderless_in_outage << " of "
            << sweeps_in_outage << " gauge sweeps during the outage; quorum back after "
            << absl::FormatDuration(kOutage) << ", broker" << new_leader << " led "
            << absl::FormatDuration(leads_again_after) << " later; at the MTA: "
            << in_outage.size() << " messages while no broker led, most in a rolling 60 s of "
            << "the outage = " << most_in_outage_minute << ", " << before_grace
            << " of them within leaderless_grace (" << kLeaderlessGrace << ") (offline allowance "
            << kOfflinePerMinute << " a node, " << cluster.options().psns << " nodes); "
            << count.arrivals.size() << " messages in all, " << count.distinct
            << " distinct in the Maildir, " << kRequests - count.lost << " of " << kRequests
            << " delivered, " << count.lost << " lost; most in any rolling 60 s = "
            << count.most_in_minute << " (limit " << kPerMinute
            << "; the offline allowance is outside the ledger), most sessions at once = "
            << count.most_sessions << "; two brokers leading in " << watch.overlapping_sweeps()
            << " of " << watch.sweeps() << " sweeps; " << watch.Timeline()
            << "; offline-allowance batches in the PSNs' logs: " << cluster.OfflineBatches()
            << ", " << offline_before_grace << " of them within the grace"
            << "; arrivals per 10 s from the burst: "
            << ArrivalsPerTenSeconds(count.arrivals, burst_began) << "; test ran "
            << absl::FormatDuration(absl::Now() - began) << std::endl;
  // The surviving member, if it was etcd's leader, still renews until raft's check-quorum makes
  // it step down (two election timeouts, 2 s here): the lease is that much longer.
  EXPECT_LE(stopped_after, kTtl + absl::Seconds(2));
  EXPECT_EQ(leaderless_in_outage, sweeps_in_outage) << "a broker led without quorum";
  EXPECT_EQ(before_grace, 0) << "offline sends at the MTA before leaderless_grace ran out";
  EXPECT_EQ(offline_before_grace, 0) << "offline batches before leaderless_grace ran out";
  EXPECT_GT(in_outage.size(), 0u) << "the nodes never fell back on the offline allowance";
  EXPECT_LE(most_in_outage_minute, kOfflinePerMinute * cluster.options().psns);
  EXPECT_GE(new_leader, 0);
  EXPECT_EQ(count.lost, 0);
  EXPECT_LE(count.most_sessions, cluster.options().connections);
  EXPECT_EQ(watch.overlapping_sweeps(), 0);
}

}  // namespace
}  // namespace mailroom
