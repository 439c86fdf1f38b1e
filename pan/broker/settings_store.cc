#include "pan/broker/settings_store.h"

#include <openssl/crypto.h>
#include <unistd.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/base/atomic_file.h"
#include "common/base/status_macros.h"
#include "common/crypto/aes_gcm.h"
#include "common/rpc/tls.h"

namespace mailroom::broker {
namespace {

namespace v1 = ::mailroom::broker::v1;

// The associated data of a sealed-format record: what it is, so that no other blob sealed
// under the same key passes for it.
constexpr char kStateBinding[] = "mailroom.broker.state/v2";

}  // namespace

std::string CredentialBinding(const std::string& username) {
  return absl::StrCat("mailroom.broker.settings/v1/", username);
}

v1::SmtpSettings StripSecrets(const v1::SmtpSettings& settings) {
  v1::SmtpSettings stripped = settings;
  if (stripped.has_client_secret()) stripped.mutable_client_secret()->clear_secret();
  if (stripped.has_certificate()) stripped.mutable_certificate()->clear_private_key_pem();
  // Read from its file by the broker when used; never stored or returned.
  if (stripped.has_proxy()) stripped.mutable_proxy()->clear_credentials();
  return stripped;
}

SettingsStore::SettingsStore(std::string path, std::string key, SettingsReplica* replica)
    : path_(std::move(path)), key_(std::move(key)), replica_(replica) {}

SettingsStore::~SettingsStore() { OPENSSL_cleanse(key_.data(), key_.size()); }

absl::StatusOr<absl::optional<SavedSettings>> SettingsStore::Load() {
  absl::MutexLock lock(&mu_);
  if (access(path_.c_str(), F_OK) != 0) return absl::optional<SavedSettings>();
  absl::StatusOr<std::string> content = ReadFileToString(path_);
  if (!content.ok()) return content.status();
  absl::string_view body = *content;
  if (!absl::ConsumePrefix(&body, kSealedStateMagic)) return LoadFirstFormat(*content);
  MR_ASSIGN_OR_RETURN(SavedSettings saved,
                      Unseal(body, absl::StrCat("the broker state file ", path_)));
  return absl::optional<SavedSettings>(std::move(saved));
}

absl::StatusOr<SavedSettings> SettingsStore::Unseal(absl::string_view body,
                                                    absl::string_view origin) {
  absl::StatusOr<std::string> plaintext = crypto::Open(key_, body, kStateBinding);
  if (!plaintext.ok()) {
    return absl::DataLossError(absl::StrCat(
        origin, " fails authentication: it was altered, or sealed under another key file (",
        plaintext.status().message(), ")"));
  }
  SavedSettings saved;
  const bool parsed = saved.state.ParseFromString(*plaintext);
  OPENSSL_cleanse(plaintext->data(), plaintext->size());
  if (!parsed) return absl::DataLossError(absl::StrCat(origin, " is corrupt"));
  saved.settings = saved.state.settings();
  *saved.state.mutable_settings() = StripSecrets(saved.settings);
  return saved;
}

absl::StatusOr<absl::optional<SavedSettings>> SettingsStore::LoadFirstFormat(
    const std::string& content) {
  SavedSettings saved;
  saved.legacy_format = true;
  if (!saved.state.ParseFromString(content)) {
    return absl::DataLossError(absl::StrCat("broker state file ", path_, " is corrupt"));
  }
  saved.settings = saved.state.settings();
  std::string sealed;
  sealed.swap(*saved.state.mutable_sealed_credential());
  if (!sealed.empty()) {
    absl::StatusOr<std::string> plaintext =
        crypto::Open(key_, sealed, CredentialBinding(saved.settings.username()));
    if (!plaintext.ok()) {
      return absl::DataLossError(absl::StrCat(
          "cannot unseal the credential in ", path_,
          " (wrong key file, or the file was altered): ", plaintext.status().message()));
    }
    internal::SealedCredential credential;
    const bool ok = credential.ParseFromString(*plaintext);
    OPENSSL_cleanse(plaintext->data(), plaintext->size());
    if (!ok) return absl::DataLossError("sealed credential is corrupt");
    if (credential.has_client_secret() && saved.settings.has_client_secret()) {
      saved.settings.mutable_client_secret()->set_secret(credential.client_secret());
    } else if (credential.has_private_key_pem() && saved.settings.has_certificate()) {
      saved.settings.mutable_certificate()->set_private_key_pem(credential.private_key_pem());
    }
  }
  return absl::optional<SavedSettings>(std::move(saved));
}

absl::Status SettingsStore::Save(const SavedSettings& saved) {
  absl::MutexLock lock(&mu_);
  internal::BrokerState state = saved.state;
  state.clear_sealed_credential();
  *state.mutable_settings() = saved.settings;  // secret included: the whole record is sealed
  // Never the proxy's password: its file is where it lives, read again at every start.
  if (state.settings().has_proxy()) state.mutable_settings()->mutable_proxy()->clear_credentials();
  std::string plaintext = state.SerializeAsString();
  absl::StatusOr<std::string> sealed = crypto::Seal(key_, plaintext, kStateBinding);
  OPENSSL_cleanse(plaintext.data(), plaintext.size());
  if (!sealed.ok()) return sealed.status();
  const std::string record = absl::StrCat(kSealedStateMagic, *sealed);
  if (replica_ != nullptr) MR_RETURN_IF_ERROR(replica_->Publish(record));
  return WriteFileAtomically(path_, record, 0600);
}

absl::StatusOr<bool> SettingsStore::Sync(SyncMode mode) {
  if (replica_ == nullptr) return false;
  MR_ASSIGN_OR_RETURN(absl::optional<std::string> record, replica_->Fetch());
  absl::MutexLock lock(&mu_);
  absl::optional<std::string> local;
  if (access(path_.c_str(), F_OK) == 0) {
    MR_ASSIGN_OR_RETURN(local, ReadFileToString(path_));
  }
  if (!record.has_value()) {
    // A first-format file is rewritten sealed by Broker::Start before anyone is elected.
    if (mode == SyncMode::kElected && local.has_value() &&
        absl::StartsWith(*local, kSealedStateMagic)) {
      MR_RETURN_IF_ERROR(replica_->Publish(*local));
    }
    return false;
  }
  if (record == local) return false;
  absl::string_view body = *record;
  if (!absl::ConsumePrefix(&body, kSealedStateMagic)) {
    return absl::DataLossError(absl::StrCat("the settings record in etcd (", replica_->key(),
                                            ") is not a sealed broker state"));
  }
  // Opened before it replaces anything: a record this broker cannot use is refused here.
  MR_RETURN_IF_ERROR(
      Unseal(body, absl::StrCat("the settings record in etcd (", replica_->key(), ")"))
          .status());
  MR_RETURN_IF_ERROR(WriteFileAtomically(path_, *record, 0600));
  return true;
}

}  // namespace mailroom::broker
