// Provides HaMailCluster, what issue 12's acceptance tests with mail share: the testbed (its MTA
// with an MtaMeter attached), a real three-member etcd, two real mailroom-broker processes
// elected through it (broker 0 leads and is configured with the testbed's settings, broker 1 is
// provisioned as its standby), and real mailroom-psn processes naming both brokers in
// broker_targets; and LeaderWatch, which samples every broker's mailroom_broker_leader gauge
// (1 exactly while its term runs, leader_election.h) to show whether two brokers ever said
// they lead at once (HaMailCluster runs one). The mail is counted at the MTA (MtaCount), never
// by mailroom. HaMailCluster is not thread-safe; LeaderWatch is.
#ifndef MAILROOM_TESTS_TESTING_HA_MAIL_CLUSTER_H_
#define MAILROOM_TESTS_TESTING_HA_MAIL_CLUSTER_H_

#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "tests/testing/broker_harness.h"
#include "tests/testing/etcd_cluster.h"
#include "tests/testing/mta_meter.h"
#include "tests/testing/node_harness.h"
#include "tests/testing/testbed.h"

namespace mailroom::testing {

struct HaMailClusterOptions {
  std::string dir;  // everything goes under it; TEST_TMPDIR when empty
  int messages_per_minute = 20;
  int connections = 2;
  absl::Duration ttl = absl::Seconds(3);
  int psns = 2;
  // psn<i> names the brokers in this order when i is even, reversed when odd, so that one
  // PSN has to find the leader from the start.
  bool alternate_broker_order = true;
  // Where etcd's members and each broker run (tests/testing/process.h); by default here, on
  // loopback. A broker placed elsewhere reaches the testbed as LISTEN_HOST (TESTBED_LISTEN_*).
  NetworkPlacement etcd;
  NetworkPlacement brokers[2];
};

// Samples each broker's leader gauge (its metrics endpoint, "host:port") every `period` from
// construction until destruction. Thread-safe.
class LeaderWatch {
 public:
  LeaderWatch(std::vector<std::string> metrics_addresses,
              absl::Duration period = absl::Milliseconds(20));
  ~LeaderWatch();
  LeaderWatch(const LeaderWatch&) = delete;
  LeaderWatch& operator=(const LeaderWatch&) = delete;

  // Sweeps (one read of every broker, a few ms) in which two or more said they lead.
  int overlapping_sweeps() const;
  // The shortest time from one broker's last sweep as leader to another's first (every
  // handover); InfiniteDuration if none was seen.
  absl::Duration shortest_handover_gap() const;
  int handovers() const;
  // Sweeps in which no broker led, and all sweeps.
  int leaderless_sweeps() const;
  int sweeps() const;
  // "broker0 led from 0.02 to 12.30 s; broker1 led from 15.10 to 40.00 s" from the watch's
  // start.
  std::string Timeline() const;
  // Each broker's terms as the sweeps saw them: the first and last sweep in which it led.
  struct Term {
    int broker;
    absl::Time first;
    absl::Time last;
  };
  std::vector<Term> Terms() const;

 private:
  void Run();

  const std::vector<std::string> addresses_;
  const absl::Duration period_;
  const absl::Time began_;
  mutable absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  int sweeps_ ABSL_GUARDED_BY(mu_) = 0;
  int overlapping_ ABSL_GUARDED_BY(mu_) = 0;
  int leaderless_ ABSL_GUARDED_BY(mu_) = 0;
  int handovers_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Duration shortest_gap_ ABSL_GUARDED_BY(mu_) = absl::InfiniteDuration();
  std::vector<Term> terms_ ABSL_GUARDED_BY(mu_);
  std::vector<bool> leading_ ABSL_GUARDED_BY(mu_);  // in the last sweep
  int last_leader_ ABSL_GUARDED_BY(mu_) = -1;
  absl::Time last_led_at_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  std::string timeline_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

// What the MTA saw of a mailbox, and whether every acknowledged message arrived.
struct MtaCount {
  int lost = 0;             // acknowledged but not in the Maildir
  int distinct = 0;         // distinct Message-IDs in the Maildir for the recipient
  std::vector<absl::Time> arrivals;  // every message from the mailbox at the MTA
  int most_in_minute = 0;   // in any rolling 60 s
  int most_sessions = 0;    // SMTP sessions open at once
};

class HaMailCluster {
 public:
  static absl::StatusOr<std::unique_ptr<HaMailCluster>> Start(HaMailClusterOptions options);

  Testbed& testbed() { return *testbed_; }
  MtaMeter& meter() { return *meter_; }
  EtcdCluster& etcd() { return *etcd_; }
  BrokerHarness& broker(int i) { return *brokers_[i]; }
  NodeHarness& psn(int i) { return *psns_[i]; }
  std::vector<NodeHarness*> psns();
  // Watches the brokers' leader gauges from when both have started.
  LeaderWatch& watch() { return *watch_; }
  const std::string& mailbox() const { return mailbox_; }
  const HaMailClusterOptions& options() const { return options_; }

  // The broker whose health is SERVING (its term runs), or -1.
  int Leader() const;
  // Waits until broker `i` is SERVING; how long that took, InfiniteDuration if it did not.
  absl::Duration AwaitLeads(int i, absl::Duration timeout) const;
  // Waits until some broker is SERVING; its index or -1.
  int AwaitAnyLeader(absl::Duration timeout) const;

  // kill -9 of the leading broker; waits up to 15 s for the other to lead (SERVING).
  struct Takeover {
    int killed = -1;
    int leader = -1;  // the new leader, -1 if none led
    absl::Time at;    // when the kill was sent
    absl::Duration after = absl::InfiniteDuration();
  };
  Takeover KillLeader();

  // Waits up to `timeout` for every acknowledged message (request → Message-ID) to reach
  // `to`, then counts what the MTA saw.
  MtaCount Count(const std::string& to, const std::map<int, std::string>& acked,
                 absl::Duration timeout);
  // Batches the PSNs sent on the offline allowance (their logs' word for it), and when each
  // was logged.
  int OfflineBatches() const { return static_cast<int>(OfflineBatchTimes().size()); }
  std::vector<absl::Time> OfflineBatchTimes() const;

 private:
  HaMailCluster() = default;

  HaMailClusterOptions options_;
  std::string mailbox_;
  std::unique_ptr<Testbed> testbed_;
  std::unique_ptr<MtaMeter> meter_;
  std::unique_ptr<EtcdCluster> etcd_;
  std::vector<std::string> metrics_addresses_;
  std::vector<std::unique_ptr<BrokerHarness>> brokers_;
  std::vector<std::unique_ptr<NodeHarness>> psns_;
  std::unique_ptr<LeaderWatch> watch_;
};

}  // namespace mailroom::testing

#endif  // MAILROOM_TESTS_TESTING_HA_MAIL_CLUSTER_H_
