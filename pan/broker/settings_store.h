// Provides SettingsStore, the broker's durable copy of the SMTP / OAuth settings: the whole
// record (settings, credential, metadata) sealed with AES-256-GCM under a key that never
// leaves the broker's node, so that changing any byte of it (an authority host, a trust
// store) is detected at load; written atomically (temporary file, fsync, rename) with mode
// 0600 so that a crash leaves either the old or the new settings, never half of each.
// Files of the first format (only the credential sealed) still load, marked for rewriting.
// With brokers elected through etcd, the same sealed record is kept in etcd too
// (settings_replica.h): the leader writes it there before its own file, and a broker syncs
// its file from etcd when it is elected and while it stands by (Sync).
// Thread-safe.
#ifndef MAILROOM_PAN_BROKER_SETTINGS_STORE_H_
#define MAILROOM_PAN_BROKER_SETTINGS_STORE_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/types/optional.h"
#include "pan/broker/broker_state.pb.h"
#include "pan/broker/settings_replica.h"
#include "proto/mailroom/broker/v1/settings.pb.h"

namespace mailroom::broker {

// The settings as the broker uses them in memory: with the credential's secret part.
struct SavedSettings {
  mailroom::broker::v1::SmtpSettings settings;  // complete, secret included
  internal::BrokerState state;                  // metadata, as stored (no secret)
  // Loaded from a file of the first format, whose clear part no key authenticates: the
  // caller checks the settings and saves them again, in the sealed format.
  bool legacy_format = false;
};

// The first bytes of a file in the sealed format.
inline constexpr char kSealedStateMagic[] = "mailroom-broker-state/2\n";

class SettingsStore {
 public:
  // `key` is the 32-byte AES-256-GCM key (see common/crypto/aes_gcm.h LoadOrCreateKeyFile).
  // `replica`, if not null (brokers elected through etcd), must outlive the store.
  SettingsStore(std::string path, std::string key, SettingsReplica* replica = nullptr);
  ~SettingsStore();

  // Reads and unseals the stored settings; nullopt if none were ever saved. DATA_LOSS if
  // the file is corrupt, was altered, or was sealed under another key.
  absl::StatusOr<absl::optional<SavedSettings>> Load();

  // Replaces the stored settings with `saved` (its settings must carry the credential's
  // secret part), all of it sealed. With a replica, the record goes to etcd first: a broker
  // that does not lead (NOT_LEADER) or cannot reach etcd saves nothing.
  absl::Status Save(const SavedSettings& saved);

  enum class SyncMode {
    // A broker just elected: if etcd holds no record yet (the first leader, or brokers that
    // ran without etcd before), its own file's record is written there.
    kElected,
    // A standby: follows etcd, writes nothing there.
    kStandby,
  };
  // Makes the file hold the replica's record, if etcd has one that differs from the file;
  // returns whether the file changed (then Load() returns the record the leader saved).
  // DATA_LOSS if etcd's record does not open under this broker's key (another key file was
  // provisioned here, or the record was altered): the file is left as it was.
  absl::StatusOr<bool> Sync(SyncMode mode);

  // Same state, settings unchanged (e.g. fired alarm marks): the credential is re-sealed.
  const std::string& path() const { return path_; }

 private:
  absl::StatusOr<absl::optional<SavedSettings>> LoadFirstFormat(const std::string& content)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The settings in a sealed-format record (`body` without the magic); `origin` names where
  // it came from in errors.
  absl::StatusOr<SavedSettings> Unseal(absl::string_view body, absl::string_view origin)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string path_;
  std::string key_;
  SettingsReplica* const replica_;
  absl::Mutex mu_;
};

// The associated data that bound a first-format sealed credential to its mailbox.
std::string CredentialBinding(const std::string& username);

// A copy of `settings` with every input-only field cleared (and the proxy credentials the
// broker read from their file).
mailroom::broker::v1::SmtpSettings StripSecrets(const mailroom::broker::v1::SmtpSettings& settings);

}  // namespace mailroom::broker

#endif  // MAILROOM_PAN_BROKER_SETTINGS_STORE_H_
