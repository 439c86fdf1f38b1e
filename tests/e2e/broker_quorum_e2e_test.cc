// Issue 12's acceptance when etcd loses quorum: two real brokers elected through a real
// three-member etcd (TTL 3 s; 20 messages a minute and 2 connections), two real mailroom-psn
// processes naming both brokers, the testbed's MTA with MtaMeter attached. Early in a burst,
// while the minute has room, two of the three etcd members are stopped (SIGSTOP: hung hosts). The leader can no
// longer write its ledger nor renew, stops granting at once and leads no more within its lease
// (its mailroom_broker_leader gauge drops, and no broker leads until quorum returns); the PSNs
// wait out offline_grace (75 s: longer than the minute, so nothing the leader granted shares a
// minute at the MTA with what they send without it), then send on the offline allowance (10 a
// node a minute, 20 for the two: the mailbox's limit); once the members are back a broker leads
// again, holds its grants until the PSNs have reported their offline sends, counts them, and
// every acknowledged registration reaches the mailbox. The MTA never sees more than the limit
// in any rolling minute, across the whole run.
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
#include "tests/testing/process.h"
#include "tests/testing/rolling_window.h"

namespace mailroom {
namespace {

using ::mailroom::testing::ArrivalsPerTenSeconds;
using ::mailroom::testing::GuestBurst;
using ::mailroom::testing::HaMailCluster;
using ::mailroom::testing::LeaderWatch;
using ::mailroom::testing::MostInWindow;
using ::mailroom::testing::MtaCount;
using ::mailroom::testing::ReadAll;

constexpr int kPerMinute = 20;
constexpr absl::Duration kTtl = absl::Seconds(3);
constexpr int kRequests = 40;
// Quorum goes once this many have arrived: the minute has room left, so the PSNs are asking the
// leader for permits when it can no longer write its ledger.
constexpr int kArrivedAtOutage = 4;
// DeliveryOptions' defaults, which the PSNs run with.
constexpr int kOfflinePerMinute = 10;
constexpr absl::Duration kOfflineGrace = absl::Seconds(75);
// Long enough for the grace and half a minute of the offline allowance, so that the allowance's
// minute and the one after quorum returns overlap at the MTA.
constexpr absl::Duration kOutage = absl::Seconds(110);
// A PSN's last answer from the leader may come a little before the outage (it was told to wait
// for room): its grace counts from then.
constexpr absl::Duration kLastAnswerSlack = absl::Seconds(5);

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
  // The nodes wait out the grace from the leader's last answer. What was permitted before went
  // out before the term ended: anything after that and before the grace is offline.
  int before_grace = 0;
  for (absl::Time t : in_outage) {
    before_grace += t < lost_quorum + kOfflineGrace - kLastAnswerSlack;
  }
  // The PSNs' own word for when they sent without a permit.
  int offline_before_grace = 0;
  for (absl::Time t : cluster.OfflineBatchTimes()) {
    offline_before_grace += t < lost_quorum + kOfflineGrace - kLastAnswerSlack;
  }
  // The leader after the outage counted what the PSNs sent without it.
  int offline_reports = 0;
  for (int i = 0; i < 2; ++i) {
    const std::string log = ReadAll(cluster.broker(i).log_path());
    for (size_t at = log.find("without a permit while no broker led"); at != std::string::npos;
         at = log.find("without a permit while no broker led", at + 1)) {
      ++offline_reports;
    }
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
            << " of them within offline_grace (" << kOfflineGrace << ") (offline allowance "
            << kOfflinePerMinute << " a node, " << cluster.options().psns << " nodes); "
            << count.arrivals.size() << " messages in all, " << count.distinct
            << " distinct in the Maildir, " << kRequests - count.lost << " of " << kRequests
            << " delivered, " << count.lost << " lost; most in any rolling 60 s = "
            << count.most_in_minute << " (limit " << kPerMinute
            << "), most sessions at once = "
            << count.most_sessions << "; two brokers leading in " << watch.overlapping_sweeps()
            << " of " << watch.sweeps() << " sweeps; " << watch.Timeline()
            << "; offline-allowance batches in the PSNs' logs: " << cluster.OfflineBatches()
            << ", " << offline_before_grace << " of them within the grace; "
            << offline_reports << " outage report(s) of offline sends in the brokers' logs"
            << "; arrivals per 10 s from the burst: "
            << ArrivalsPerTenSeconds(count.arrivals, burst_began) << "; test ran "
            << absl::FormatDuration(absl::Now() - began) << std::endl;
  // The surviving member, if it was etcd's leader, still renews until raft's check-quorum makes
  // it step down (two election timeouts, 2 s here): the lease is that much longer.
  EXPECT_LE(stopped_after, kTtl + absl::Seconds(2));
  EXPECT_EQ(leaderless_in_outage, sweeps_in_outage) << "a broker led without quorum";
  EXPECT_EQ(before_grace, 0) << "offline sends at the MTA before offline_grace ran out";
  EXPECT_EQ(offline_before_grace, 0) << "offline batches before offline_grace ran out";
  EXPECT_LE(count.most_in_minute, kPerMinute) << "the MTA saw more than the limit in a minute";
  EXPECT_GE(offline_reports, 1) << "no broker counted the offline sends";
  EXPECT_GT(in_outage.size(), 0u) << "the nodes never fell back on the offline allowance";
  EXPECT_LE(most_in_outage_minute, kOfflinePerMinute * cluster.options().psns);
  EXPECT_GE(new_leader, 0);
  EXPECT_EQ(count.lost, 0);
  EXPECT_LE(count.most_sessions, cluster.options().connections);
  EXPECT_EQ(watch.overlapping_sweeps(), 0);
}

}  // namespace
}  // namespace mailroom
