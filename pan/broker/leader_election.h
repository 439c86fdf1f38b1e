// Provides LeaderElection, which elects one broker among several through etcd (lease +
// transaction, the way Patroni elects a PostgreSQL primary) and fences the leader's term:
//
// - Each broker holds an etcd lease of `ttl`, renewed every ttl/3 (LeaseKeepAlive; a standby
//   every ttl/6), and tries to create the election key attached to that lease if no one holds
//   it (CreateIfAbsent). The
//   broker that created it leads; the key's value is its advertised address, which standbys
//   read and tell the role nodes (NOT_LEADER, leader_address). A leader checks every round
//   that the key is still its own (same lease and create_revision).
// - Fencing: the leader considers itself leader only until T + ttl - margin on its own
//   MonotonicClock, where T is when it sent the last lease request that succeeded (the grant
//   or a renewal) and margin = max(ttl/10, 500 ms). etcd received that request after T, so
//   the lease cannot expire (and no other broker can create the key) before T + ttl on
//   etcd's clock; the margin covers the two clocks' rates differing by up to 10 % (minus the
//   round trip). A leader that cannot renew therefore stops granting before another broker
//   can be elected, with no need for synchronized clocks. Grants are capped to end within
//   the term (RemainingTerm), so nothing granted by one leader is in use under the next.
// - Resign (SIGTERM): the term ends at once, then the key and lease are released, so a
//   standby takes over within its next round instead of a TTL.
//
// Step() is one round (the background loop runs it; tests call it with a fake clock and a
// fake etcd transport). Thread-safe.
#ifndef MAILROOM_PAN_BROKER_LEADER_ELECTION_H_
#define MAILROOM_PAN_BROKER_LEADER_ELECTION_H_

#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/base/background_loop.h"
#include "common/base/clock.h"
#include "common/etcd/etcd_client.h"
#include "pan/broker/leadership.h"

namespace mailroom::broker {

struct LeaderElectionOptions {
  std::string election_key = "/mailroom/broker/leader";
  // host:port at which role nodes reach this broker.
  std::string advertised_address;
  absl::Duration ttl = absl::Seconds(3);
  // Called on the loop's thread whenever this broker starts or stops leading (e.g. to set
  // the gRPC health status); may be empty.
  std::function<void(bool leading)> on_change;
  // Called on the loop's thread once this broker has won the key and before its term starts
  // (the quota ledger loads here, with the hold that guards its writes); an error gives the
  // key up again. May be empty.
  std::function<absl::Status(const etcd::KeyHold& hold)> on_elected;
  // Called on the loop's thread just before each term starts (won, or resumed after renewals
  // failed for a while with the key still ours), with how long this broker had seen no broker
  // lead before (InfiniteDuration if it never saw one): long enough, and role nodes may have
  // sent on their offline allowance (send_quota.h). May be empty.
  std::function<void(absl::Duration leaderless_for)> on_term_start;
};

// What a broker knows of the election at one moment (for NodeStatus), read under one lock.
struct ElectionState {
  bool leading = false;
  // The leader's advertised address as last seen in etcd ("" if unknown).
  std::string leader_address;
  // The leader's term: the election key's create_revision, which etcd makes new each time a
  // broker creates the key; 0 while no leader is known.
  int64_t term = 0;
  // The leader only: how long it has led, and how much of its term is left.
  absl::Duration leading_for;
  absl::Duration remaining_term;
};

// margin = max(ttl / 10, 500 ms): how long before its lease could expire a leader stops.
absl::Duration FencingMargin(absl::Duration ttl);

class LeaderElection final : public Leadership {
 public:
  // `etcd` and `clock` (a MonotonicClock in `main`) must outlive the election.
  LeaderElection(LeaderElectionOptions options, etcd::EtcdClient* etcd, const Clock* clock);
  ~LeaderElection() override;

  // Runs Step() in the background until Stop() or Resign().
  void Start();
  // Stops the background rounds; leaves the lease to expire (as a crash would).
  void Stop();
  // Stops, ends the term at once, and gives up the key and the lease.
  void Resign();

  // One round: obtain or renew the lease, then try to lead or check the lead. Returns when
  // the next round is due.
  absl::Time Step();

  absl::Status CheckLeader() const override;
  absl::Duration RemainingTerm() const override;
  bool leading() const { return RemainingTerm() > absl::ZeroDuration(); }
  // The leader's advertised address as last seen ("" if unknown).
  std::string leader_address() const;
  // When this broker's current term began (InfinitePast if it does not lead).
  absl::Time leader_since() const;
  ElectionState State() const;
  const LeaderElectionOptions& options() const { return options_; }

 private:
  // Ends the term (and forgets the hold) if `lost`; reports a change of leadership.
  void Report(bool now_leading);
  // Calls on_term_start for a term starting at `now`.
  void StartTerm(absl::Time now);

  const LeaderElectionOptions options_;
  const absl::Duration margin_;
  etcd::EtcdClient* etcd_;
  const Clock* clock_;

  mutable absl::Mutex mu_;
  int64_t lease_ ABSL_GUARDED_BY(mu_) = 0;
  // Send time of the last lease request (grant or renewal) that succeeded.
  absl::Time renewed_at_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  // Set while this broker holds the election key.
  bool holds_key_ ABSL_GUARDED_BY(mu_) = false;
  etcd::KeyHold hold_ ABSL_GUARDED_BY(mu_);
  absl::Time term_end_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  absl::Time leader_since_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  std::string leader_address_ ABSL_GUARDED_BY(mu_);
  // The create_revision of the election key as last seen (0: none known).
  int64_t leader_term_ ABSL_GUARDED_BY(mu_) = 0;
  bool reported_leading_ ABSL_GUARDED_BY(mu_) = false;
  // When a round last found a broker leading (this one renewing its term, or another holding
  // the key).
  absl::Time leader_seen_at_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  BackgroundLoop loop_;
};

}  // namespace mailroom::broker

#endif  // MAILROOM_PAN_BROKER_LEADER_ELECTION_H_
