// Issue 12's acceptance for a rolling restart while mail flows: two real brokers elected
// through a real three-member etcd (TTL 3 s; 20 messages a minute and 2 connections), two real
// mailroom-psn processes naming both brokers, the testbed's MTA with MtaMeter attached. During a
// burst of guest registrations the standby broker is restarted, then the leader (SIGTERM: it
// hands over; it starts again once the other leads), then each etcd member in turn (stopped, then started again with its data once
// the others serve). Every acknowledged registration reaches the mailbox, the MTA never sees
// more than 20 messages in a rolling minute nor more than 2 sessions at once, and the brokers'
// leader gauges never say two lead at once.
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

namespace mailroom {
namespace {

using ::mailroom::testing::ArrivalsPerTenSeconds;
using ::mailroom::testing::GuestBurst;
using ::mailroom::testing::HaMailCluster;
using ::mailroom::testing::LeaderWatch;
using ::mailroom::testing::MtaCount;

constexpr int kPerMinute = 20;
constexpr int kRequests = 40;
// A registration every 2 s per PSN: the burst lasts about 40 s, through the restarts.
constexpr absl::Duration kPace = absl::Seconds(2);
// Mail keeps flowing between two restarts for this long.
constexpr absl::Duration kBetween = absl::Seconds(4);

TEST(BrokerRollingRestartE2eTest, NoMailLostNoViolationThroughRestartsOfBrokersAndEtcd) {
  const absl::Time began = absl::Now();
  // 20 messages a minute, 2 connections, TTL 3 s: HaMailClusterOptions' defaults.
  absl::StatusOr<std::unique_ptr<HaMailCluster>> started = HaMailCluster::Start({});
  ASSERT_TRUE(started.ok()) << started.status();
  HaMailCluster& cluster = **started;
  LeaderWatch& watch = cluster.watch();

  const std::string to = "broker-rolling@example.test";
  const absl::Time burst_began = absl::Now();
  GuestBurst burst(cluster.psns(), "rolling", to, kRequests, /*threads_per_psn=*/1, kPace);
  std::string steps;
  auto step = [&](const std::string& what) {
    const int leader = cluster.AwaitAnyLeader(absl::Seconds(20));
    absl::StrAppend(&steps, what, " at ", absl::ToInt64Milliseconds(absl::Now() - burst_began),
                    " ms (then broker", leader, " led); ");
    return leader;
  };
  absl::SleepFor(kBetween);
  // The standby first, then the leader, as an admin would (one handover, not two). Each is
  // down until the other leads: a restart quicker than the standby's round would find the key
  // free and lead again itself, and no handover would be tested.
  const int leader = cluster.Leader();
  ASSERT_GE(leader, 0);
  for (const int broker : {1 - leader, leader}) {
    cluster.broker(broker).process().Terminate();
    ASSERT_NE(cluster.AwaitLeads(1 - broker, absl::Seconds(10)), absl::InfiniteDuration());
    ASSERT_TRUE(cluster.broker(broker).Restart().ok());
    ASSERT_GE(step(absl::StrCat("broker", broker, " restarted")), 0);
    absl::SleepFor(kBetween);
  }
  for (int member = 0; member < cluster.etcd().size(); ++member) {
    if (member > 0) absl::SleepFor(kBetween);
    cluster.etcd().Stop(member);
    absl::SleepFor(absl::Seconds(2));
    ASSERT_TRUE(cluster.etcd().Restart(member).ok());
    ASSERT_GE(step(absl::StrCat("etcd member ", member, " restarted")), 0);
  }
  burst.Join();
  const size_t unacked_at_first = burst.unacked().size();
  ASSERT_TRUE(burst.RetryUnacked(absl::Seconds(20)).ok());
  const std::map<int, std::string> acked = burst.acked();
  ASSERT_EQ(acked.size(), static_cast<size_t>(kRequests));

  const MtaCount count = cluster.Count(to, acked, absl::Seconds(300));
  std::cout << kRequests << " registrations via psn1 and psn2; " << steps << unacked_at_first
            << " registrations retried; at the MTA: " << count.arrivals.size()
            << " messages, " << count.distinct << " distinct in the Maildir, "
            << kRequests - count.lost << " of " << kRequests << " delivered, " << count.lost
            << " lost; most in any rolling 60 s = " << count.most_in_minute << " (limit "
            << kPerMinute << "), most sessions at once = " << count.most_sessions << " (limit "
            << cluster.options().connections << "); leader gauges: two leading in "
            << watch.overlapping_sweeps() << " of " << watch.sweeps() << " sweeps, "
            << watch.handovers() << " handovers, the shortest gap "
            << watch.shortest_handover_gap() << "; " << watch.Timeline()
            << "; offline-allowance batches in the PSNs' logs: " << cluster.OfflineBatches()
            << "; arrivals per 10 s from the burst: "
            << ArrivalsPerTenSeconds(count.arrivals, burst_began) << "; test ran "
            << absl::FormatDuration(absl::Now() - began) << std::endl;
  EXPECT_EQ(count.lost, 0);
  EXPECT_LE(count.most_in_minute, kPerMinute);
  EXPECT_LE(count.most_sessions, cluster.options().connections);
  EXPECT_EQ(watch.overlapping_sweeps(), 0);
  EXPECT_GE(watch.handovers(), 1);
}

}  // namespace
}  // namespace mailroom
