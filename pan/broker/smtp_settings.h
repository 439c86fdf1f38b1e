// Provides the rules of the SMTP / OAuth settings (the seed's SMTP Server page): validation
// that names the bad field, the defaults (smtp.office365.com, 587, 60 s, the documented
// scope), the derived read-only token endpoint, keeping a stored credential when an update
// leaves it empty, the proxy (its validation, its credentials read from a file on this node,
// and where the saved ones may go), and a fingerprint of exactly-these-settings for "saved
// only after a successful Test Connection". Stateless and thread-safe.
#ifndef MAILROOM_PAN_BROKER_SMTP_SETTINGS_H_
#define MAILROOM_PAN_BROKER_SMTP_SETTINGS_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/rpc/curl_proxy.h"
#include "proto/mailroom/broker/v1/settings.pb.h"

namespace mailroom::broker {

using ::mailroom::broker::v1::SmtpSettings;

inline constexpr char kDefaultSmtpHost[] = "smtp.office365.com";
inline constexpr int kDefaultSmtpPort = 587;
inline constexpr absl::Duration kDefaultConnectionTimeout = absl::Seconds(60);
inline constexpr char kDefaultScope[] = "https://outlook.office365.com/.default";
inline constexpr char kSeedScope[] = "https://outlook.office.com/.default";
// The Graph transport: Graph's base URL when graph_endpoint is empty, and the scope of its
// tokens (the same credential, another resource).
inline constexpr char kDefaultGraphEndpoint[] = "https://graph.microsoft.com";
inline constexpr char kGraphScope[] = "https://graph.microsoft.com/.default";
inline constexpr char kDefaultAuthorityHost[] = "https://login.microsoftonline.com";

// Fills every defaulted field and the derived token_endpoint. `default_authority` replaces
// an empty authority_host.
SmtpSettings ResolveDefaults(const SmtpSettings& settings, const std::string& default_authority);

// Checks resolved settings. INVALID_ARGUMENT naming each bad field as "<prefix>.<field>".
absl::Status ValidateSmtpSettings(const SmtpSettings& settings, const std::string& prefix);

// `update` with its omitted credential, or empty secret / private key, taken from `stored`
// (if the stored credential is of the same kind). The stored credential, and the tokens it
// buys, go only where they were saved and tested: when the update asks for the stored
// credential but resolves to a different token endpoint (authority_host, tenant_id),
// client_id, authority_trust_store, SMTP server (smtp_host, port, smtp_trust_store) or proxy
// (proxy.url, proxy.credentials_file, proxy.trust_store), the answer is INVALID_ARGUMENT
// naming each changed field and asking for the credential again. Likewise the saved proxy
// credentials go only to the proxy they were saved with: an update that names the same
// credentials file (the same file by any path) for another proxy.url or proxy.trust_store is
// INVALID_ARGUMENT, whatever credential it carries. Otherwise no error: validation later
// reports a credential that is still missing.
absl::StatusOr<SmtpSettings> MergeStoredCredential(const SmtpSettings& update,
                                                   const SmtpSettings* stored,
                                                   const std::string& default_authority);

// Replaces the source of each trust store that has one (a ca_file, read here, or a
// ca_bundle_pem) by the CA certificates it holds, as ca_bundle_pem: only those are used,
// fingerprinted and handed to role nodes. INVALID_ARGUMENT naming the field
// ("settings.smtp_trust_store.ca_file: ...") when a source is unreadable or holds anything
// but CA certificates.
absl::Status InlineTrustStores(SmtpSettings* resolved);

// Reads proxy.credentials_file into proxy.credentials (cleared when no file is named), for
// resolved settings that passed validation. INVALID_ARGUMENT naming
// "settings.proxy.credentials_file" when the file is missing or unreadable, is not a regular
// file, lets another user or group read it (the key file's mode rule: 0600, 0400, or 0440
// with this process's own group), or is not one line "user:password" of printable ASCII. The
// message never quotes the file's content.
absl::Status LoadProxyCredentials(SmtpSettings* resolved);

// The proxy of resolved settings, for the libcurl clients (credentials once
// LoadProxyCredentials ran, the trust store once InlineTrustStores ran); an empty url if none.
ProxyConfig ProxyConfigOf(const SmtpSettings& resolved);

// Lowercase hex SHA-256 over the resolved settings including the credential: equal only
// for exactly the same settings.
std::string SettingsFingerprint(const SmtpSettings& resolved);

absl::Duration ConnectionTimeoutOf(const SmtpSettings& resolved);
bool UsesAuthentication(const SmtpSettings& settings);
absl::Time CredentialExpiry(const SmtpSettings& settings);

}  // namespace mailroom::broker

#endif  // MAILROOM_PAN_BROKER_SMTP_SETTINGS_H_
