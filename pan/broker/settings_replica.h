// Provides SettingsReplica, the broker's sealed settings record (settings_store.h: the SMTP /
// OAuth settings, the credential, the secret-expiry alarm marks, all sealed with AES-256-GCM
// under the broker key) kept in etcd while brokers are elected (leader_election.h), so that a
// broker that takes over sends with the settings the last leader saved, not with the copy it
// was provisioned with.
//
// - Only ciphertext enters etcd. The broker key is provisioned on each broker's node and
//   never leaves it: whoever reads etcd learns nothing of the secret, and a record altered
//   or sealed under another key fails authentication when a broker opens it (DATA_LOSS).
// - Fenced (leader_fence.h), with the same fence as the quota ledger: a write succeeds only
//   while the election key is held with the lease and create_revision of the term in which
//   this broker was elected (Guard), so a broker that lost the lead cannot overwrite its
//   successor's settings.
// Thread-safe.
#ifndef MAILROOM_PAN_BROKER_SETTINGS_REPLICA_H_
#define MAILROOM_PAN_BROKER_SETTINGS_REPLICA_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/optional.h"
#include "common/etcd/etcd_client.h"
#include "pan/broker/leader_fence.h"

namespace mailroom::broker {

struct SettingsReplicaOptions {
  // Where the sealed record lives.
  std::string key = "/mailroom/broker/settings";
};

class SettingsReplica {
 public:
  // `fence` (and its etcd client) must outlive the replica.
  SettingsReplica(SettingsReplicaOptions options, LeaderFence* fence);

  // Guards later writes with `hold`, the election key as this broker just won it
  // (LeaderFence::Guard: the quota ledger's writes too, as they share the fence).
  void Guard(const etcd::KeyHold& hold);
  // Writes `record` (a sealed settings record, as SettingsStore writes its file).
  // UNAVAILABLE with reason NOT_LEADER when no term guards the write or the election key is
  // no longer held as it was won; other errors when etcd cannot be reached.
  absl::Status Publish(absl::string_view record);
  // The record in etcd; nullopt if no leader has written one yet.
  absl::StatusOr<absl::optional<std::string>> Fetch();

  const std::string& key() const { return options_.key; }

 private:
  const SettingsReplicaOptions options_;
  LeaderFence* const fence_;
};

}  // namespace mailroom::broker

#endif  // MAILROOM_PAN_BROKER_SETTINGS_REPLICA_H_
