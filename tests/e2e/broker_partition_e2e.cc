// Issue 12's acceptance for a leader cut off from etcd, over real network partitions: run by
// broker_partition_e2e_test.sh, which makes the hosts (network namespaces: this test, the
// testbed and the two PSNs on "peers"; broker a, broker b and the three etcd members each on
// their own host) and runs this binary on "peers". Two real brokers elected through the real
// etcd (TTL 3 s; 20 messages a minute and 2 connections), two real mailroom-psn processes
// naming both, the testbed's MTA with MtaMeter attached. Early in a burst, while the mailbox's
// minute still has room, the leader's host is cut off from etcd's (blackhole routes on both):
// the leader stops granting within its lease (its mailroom_broker_leader gauge drops no later
// than TTL after the cut), the other broker leads only after that (the gauges never show two
// leading), mail continues through the new leader, every acknowledged registration arrives,
// and the MTA never sees more than 20 messages in a rolling minute nor more than 2 sessions.
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
using ::mailroom::testing::HaMailClusterOptions;
using ::mailroom::testing::LeaderWatch;
using ::mailroom::testing::MtaCount;

constexpr int kPerMinute = 20;
constexpr absl::Duration kTtl = absl::Seconds(3);
constexpr int kRequests = 40;
// The cut comes once this many have arrived: the minute has room left, so the PSNs are asking
// the leader for permits when its etcd goes away.
constexpr int kArrivedAtCut = 4;
// DeliveryOptions::offline_grace (75 s), which the PSNs run with, less the few seconds a
// PSN's last answer from the leader may come before the cut.
constexpr absl::Duration kOfflineGrace = absl::Seconds(70);

// Runs `command` in namespace `ns`; whether it succeeded.
bool InNamespace(const std::string& ns, const std::string& command) {
  return std::system(absl::StrCat("ip netns exec ", ns, " ", command).c_str()) == 0;
}

TEST(BrokerPartitionE2eTest, ALeaderCutOffFromEtcdStopsBeforeTheOtherLeadsAndNoLimitIsExceeded) {
  const char* prefix_env = std::getenv("MRHA_PREFIX");
  ASSERT_NE(prefix_env, nullptr) << "run through tests/e2e/broker_partition_e2e_test.sh";
  const std::string prefix = prefix_env;
  const absl::Time began = absl::Now();
  HaMailClusterOptions options;
  options.messages_per_minute = kPerMinute;
  options.ttl = kTtl;
  options.etcd = {prefix + "etcd", "10.78.0.4", "etcd"};
  options.brokers[0] = {prefix + "a", "10.78.0.2", "broker-a"};
  options.brokers[1] = {prefix + "b", "10.78.0.3", "broker-b"};
  absl::StatusOr<std::unique_ptr<HaMailCluster>> started = HaMailCluster::Start(options);
  ASSERT_TRUE(started.ok()) << started.status();
  HaMailCluster& cluster = **started;
  LeaderWatch& watch = cluster.watch();

  const std::string to = "broker-partition@example.test";
  const absl::Time burst_began = absl::Now();
  GuestBurst burst(cluster.psns(), "partition", to, kRequests, 2, absl::Seconds(1));
  for (const absl::Time deadline = absl::Now() + absl::Seconds(60);
       cluster.meter().Arrivals(cluster.mailbox()).size() < kArrivedAtCut &&
       absl::Now() < deadline;) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  ASSERT_EQ(cluster.Leader(), 0) << "broker a does not lead";
  const absl::Time cut = absl::Now();
  const size_t arrived_at_cut = cluster.meter().Arrivals(cluster.mailbox()).size();
  ASSERT_TRUE(InNamespace(prefix + "a", "ip route add blackhole 10.78.0.4/32"));
  ASSERT_TRUE(InNamespace(prefix + "etcd", "ip route add blackhole 10.78.0.2/32"));
  const absl::Duration b_led_after = cluster.AwaitLeads(1, absl::Seconds(20));
  burst.Join();
  const size_t unacked_at_first = burst.unacked().size();
  ASSERT_TRUE(burst.RetryUnacked(absl::Seconds(20)).ok());
  const std::map<int, std::string> acked = burst.acked();
  ASSERT_EQ(acked.size(), static_cast<size_t>(kRequests));
  const MtaCount count = cluster.Count(to, acked, absl::Seconds(300));

  // The gauges: a's term that ran at the cut, and b's first term after it.
  absl::Time a_last_led = absl::InfinitePast();
  absl::Time b_first_led = absl::InfiniteFuture();
  for (const LeaderWatch::Term& term : watch.Terms()) {
    if (term.broker == 0 && term.first < cut) a_last_led = std::max(a_last_led, term.last);
    if (term.broker == 1 && term.first > cut) b_first_led = std::min(b_first_led, term.first);
  }
  // The PSNs' own word for when they sent without a permit: a leader that cannot write its
  // ledger is an election to them, which they wait out.
  int offline_before_grace = 0;
  for (absl::Time t : cluster.OfflineBatchTimes()) {
    offline_before_grace += t < cut + kOfflineGrace;
  }
  int after_cut = 0;
  for (absl::Time t : count.arrivals) after_cut += t > cut;
  std::cout << kRequests << " registrations via psn1 and psn2; broker a's host cut off from "
            << "etcd's " << absl::FormatDuration(cut - burst_began) << " into the burst ("
            << arrived_at_cut << " at the MTA then); a's gauge last said it leads "
            << absl::FormatDuration(a_last_led - cut) << " after the cut (TTL " << kTtl
            << "), b's first said so " << absl::FormatDuration(b_first_led - cut)
            << " after it (gap " << absl::FormatDuration(b_first_led - a_last_led)
            << "; b's health SERVING after " << absl::FormatDuration(b_led_after) << "); "
            << unacked_at_first << " registrations retried; at the MTA: "
            << count.arrivals.size() << " messages (" << after_cut << " after the cut), "
            << count.distinct << " distinct in the Maildir, " << kRequests - count.lost
            << " of " << kRequests << " delivered, " << count.lost
            << " lost; most in any rolling 60 s = " << count.most_in_minute << " (limit "
            << kPerMinute << "), most sessions at once = " << count.most_sessions << " (limit "
            << options.connections << "); two brokers leading in " << watch.overlapping_sweeps()
            << " of " << watch.sweeps() << " gauge sweeps; " << watch.Timeline()
            << "; offline-allowance batches in the PSNs' logs: " << cluster.OfflineBatches()
            << ", " << offline_before_grace <<  " of them within offline_grace"
            << "; arrivals per 10 s from the burst: "
            << ArrivalsPerTenSeconds(count.arrivals, burst_began) << "; test ran "
            << absl::FormatDuration(absl::Now() - began) << std::endl;
  // Its last renewal was sent before the cut: the term ends TTL - margin after it.
  EXPECT_LE(a_last_led - cut, kTtl);
  EXPECT_LT(a_last_led, b_first_led);
  EXPECT_LT(b_led_after, absl::Seconds(10));
  EXPECT_EQ(watch.overlapping_sweeps(), 0);
  EXPECT_EQ(offline_before_grace, 0);
  EXPECT_EQ(count.lost, 0);
  EXPECT_LE(count.most_in_minute, kPerMinute);
  EXPECT_LE(count.most_sessions, options.connections);
}

}  // namespace
}  // namespace mailroom
