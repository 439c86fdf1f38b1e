// Provides LeaderFence, the one guard of the records an elected broker keeps in etcd (the
// quota ledger's, quota_ledger.h; the sealed settings record, settings_replica.h): a write
// succeeds only while the election key (leader_election.h) is still held with the lease and
// create_revision of the term in which this broker won it, one etcd transaction
// (EtcdClient::PutWhileHeld), so a broker that lost the lead cannot overwrite its successor's
// records. The first write that finds the key held otherwise ends the term here: later writes
// fail at once, without asking etcd, until the next Guard. Thread-safe.
#ifndef MAILROOM_PAN_BROKER_LEADER_FENCE_H_
#define MAILROOM_PAN_BROKER_LEADER_FENCE_H_

#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/types/optional.h"
#include "common/etcd/etcd_client.h"

namespace mailroom::broker {

struct LeaderFenceOptions {
  // The election key whose hold guards every write (LeaderElectionOptions::election_key).
  std::string election_key = "/mailroom/broker/leader";
};

class LeaderFence {
 public:
  // `etcd` must outlive the fence.
  LeaderFence(LeaderFenceOptions options, etcd::EtcdClient* etcd);

  // Guards later writes with `hold`: the election key as this broker just won it.
  void Guard(const etcd::KeyHold& hold);
  // Ends the term here: writes fail until the next Guard.
  void Drop();
  // The hold that guards writes now; nullopt between terms.
  absl::optional<etcd::KeyHold> term() const;

  // Writes `key` = `value` while the election key is held as `hold` says (a hold from term()).
  // UNAVAILABLE with reason NOT_LEADER, the message "`writer`: the election key is no longer
  // this broker's", when it is not (the fence drops `hold` if it is still the term); etcd's
  // own error, nothing dropped, when etcd cannot be reached.
  absl::Status Put(absl::string_view writer, absl::string_view key, absl::string_view value,
                   const etcd::KeyHold& hold);

  etcd::EtcdClient* etcd() const { return etcd_; }

 private:
  const LeaderFenceOptions options_;
  etcd::EtcdClient* const etcd_;
  mutable absl::Mutex mu_;
  absl::optional<etcd::KeyHold> term_ ABSL_GUARDED_BY(mu_);
};

}  // namespace mailroom::broker

#endif  // MAILROOM_PAN_BROKER_LEADER_FENCE_H_
