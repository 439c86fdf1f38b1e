#include "pan/broker/smtp_settings.h"

#include <regex>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/strip.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/base/proto_hash.h"
#include "google/protobuf/util/message_differencer.h"
#include "common/base/proto_time.h"
#include "common/crypto/ca_bundle.h"
#include "common/rpc/http_transport.h"
#include "pan/broker/token_client.h"

namespace mailroom::broker {
namespace {

const std::regex& GuidPattern() {
  static const auto* pattern = new std::regex(
      "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}");
  return *pattern;
}

const std::regex& DomainPattern() {
  static const auto* pattern = new std::regex(
      "([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\\.)+[A-Za-z]{2,63}");
  return *pattern;
}

const std::regex& MailboxPattern() {
  // RFC 5321 dot-atom local part at a domain; mailbox usernames are plain addresses.
  static const auto* pattern = new std::regex(
      "[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*@"
      "([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\\.)+[A-Za-z]{2,63}");
  return *pattern;
}

bool HasControlOrSpace(absl::string_view value) {
  for (unsigned char c : value) {
    if (c <= 0x20 || c == 0x7f) return true;
  }
  return false;
}

}  // namespace

bool UsesAuthentication(const SmtpSettings& settings) {
  return !settings.has_use_authentication() || settings.use_authentication();
}

absl::Duration ConnectionTimeoutOf(const SmtpSettings& resolved) {
  return resolved.has_connection_timeout() ? FromProto(resolved.connection_timeout())
                                           : kDefaultConnectionTimeout;
}

absl::Time CredentialExpiry(const SmtpSettings& settings) {
  const google::protobuf::Timestamp* expiry = nullptr;
  if (settings.has_client_secret() && settings.client_secret().has_expire_time()) {
    expiry = &settings.client_secret().expire_time();
  } else if (settings.has_certificate() && settings.certificate().has_expire_time()) {
    expiry = &settings.certificate().expire_time();
  }
  if (expiry == nullptr) return absl::InfiniteFuture();
  return absl::FromUnixSeconds(expiry->seconds()) + absl::Nanoseconds(expiry->nanos());
}

SmtpSettings ResolveDefaults(const SmtpSettings& settings, const std::string& default_authority) {
  SmtpSettings resolved = settings;
  if (resolved.smtp_host().empty()) resolved.set_smtp_host(kDefaultSmtpHost);
  if (resolved.port() == 0) resolved.set_port(kDefaultSmtpPort);
  if (!resolved.has_connection_timeout()) {
    resolved.mutable_connection_timeout()->set_seconds(
        absl::ToInt64Seconds(kDefaultConnectionTimeout));
  }
  if (!resolved.has_use_authentication()) resolved.set_use_authentication(true);
  if (resolved.authority_host().empty()) {
    resolved.set_authority_host(default_authority.empty() ? kDefaultAuthorityHost
                                                          : default_authority);
  }
  if (resolved.scope().empty()) resolved.set_scope(kDefaultScope);
  resolved.set_token_endpoint(
      resolved.tenant_id().empty() ? ""
                                   : TokenEndpointFor(resolved.authority_host(),
                                                      resolved.tenant_id()));
  return resolved;
}

absl::Status ValidateSmtpSettings(const SmtpSettings& s, const std::string& prefix) {
  std::vector<std::string> errors;
  auto bad = [&](absl::string_view field, absl::string_view problem) {
    errors.push_back(absl::StrCat(prefix, ".", field, ": ", problem));
  };
  if (s.smtp_host().empty() || s.smtp_host().size() > 253 || HasControlOrSpace(s.smtp_host())) {
    bad("smtp_host", "must be a host name or address (no spaces, at most 253 characters)");
  }
  if (s.port() < 1 || s.port() > 65535) bad("port", "must be 1..65535");
  const absl::Duration timeout = ConnectionTimeoutOf(s);
  if (timeout < absl::Seconds(1) || timeout > absl::Seconds(300)) {
    bad("connection_timeout", "must be 1 s to 300 s");
  }
  if (s.username().empty()) {
    bad("username", "is required: the full address of the sending mailbox");
  } else if (!std::regex_match(s.username(), MailboxPattern())) {
    bad("username", "must be a full email address such as no-reply@contoso.com");
  }
  if (UsesAuthentication(s)) {
    if (s.tenant_id().empty()) {
      bad("tenant_id", "is required: the Directory (tenant) ID or a verified domain");
    } else if (!std::regex_match(s.tenant_id(), GuidPattern()) &&
               !std::regex_match(s.tenant_id(), DomainPattern())) {
      bad("tenant_id", "must be a GUID or a domain name");
    }
    if (s.client_id().empty()) {
      bad("client_id", "is required: the Application (client) ID");
    } else if (!std::regex_match(s.client_id(), GuidPattern())) {
      bad("client_id", "must be a GUID (the Application (client) ID)");
    }
    const std::string& authority = s.authority_host();
    const bool loopback_http = IsLoopbackHttpUrl(authority);
    if (!absl::StartsWith(authority, "https://") && !loopback_http) {
      bad("authority_host", "must be an https:// URL (plain http only on loopback, for tests)");
    } else if (HasControlOrSpace(authority) || authority.find('?') != std::string::npos) {
      bad("authority_host", "must be a plain URL such as https://login.microsoftonline.com");
    }
    if (s.scope() != kDefaultScope && s.scope() != kSeedScope) {
      bad("scope", absl::StrCat("must be ", kDefaultScope, " (or ", kSeedScope, ")"));
    }
    if (s.has_client_secret()) {
      const std::string& secret = s.client_secret().secret();
      if (secret.empty()) bad("client_secret.secret", "is required");
      if (secret.size() > 1024) bad("client_secret.secret", "exceeds 1024 characters");
      for (unsigned char c : secret) {
        if (c < 0x21 || c > 0x7e) {
          bad("client_secret.secret", "must be printable ASCII (paste the secret's Value)");
          break;
        }
      }
      if (!s.client_secret().has_expire_time()) {
        bad("client_secret.expire_time",
            "is required: the secret's expiry date drives the expiry alarm");
      }
    } else if (s.has_certificate()) {
      if (s.certificate().certificate_pem().empty()) bad("certificate.certificate_pem", "is required");
      if (s.certificate().private_key_pem().empty()) bad("certificate.private_key_pem", "is required");
    } else {
      bad("credential", "is required: a client secret with its expiry date, or a certificate");
    }
  }
  if (errors.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrJoin(errors, "; "));
}

namespace {

// Whether `update` leaves (part of) its credential to be filled from `stored`.
bool WantsStoredCredential(const SmtpSettings& update, const SmtpSettings& stored) {
  switch (update.credential_case()) {
    case SmtpSettings::CREDENTIAL_NOT_SET:
      return stored.credential_case() != SmtpSettings::CREDENTIAL_NOT_SET;
    case SmtpSettings::kClientSecret:
      return update.client_secret().secret().empty() && stored.has_client_secret();
    case SmtpSettings::kCertificate:
      return update.certificate().private_key_pem().empty() && stored.has_certificate() &&
             update.certificate().certificate_pem() == stored.certificate().certificate_pem();
  }
  return false;
}

// The fields that decide where the credential is sent and where its tokens are presented,
// named as the update names them, that differ between the two resolved settings.
std::vector<std::string> ChangedDestinations(const SmtpSettings& update,
                                             const SmtpSettings& stored) {
  using ::google::protobuf::util::MessageDifferencer;
  std::vector<std::string> changed;
  if (update.authority_host() != stored.authority_host()) changed.push_back("authority_host");
  if (update.tenant_id() != stored.tenant_id()) changed.push_back("tenant_id");
  if (update.client_id() != stored.client_id()) changed.push_back("client_id");
  if (!MessageDifferencer::Equals(update.authority_trust_store(), stored.authority_trust_store())) {
    changed.push_back("authority_trust_store");
  }
  if (update.smtp_host() != stored.smtp_host()) changed.push_back("smtp_host");
  if (update.port() != stored.port()) changed.push_back("port");
  if (!MessageDifferencer::Equals(update.smtp_trust_store(), stored.smtp_trust_store())) {
    changed.push_back("smtp_trust_store");
  }
  return changed;
}

}  // namespace

absl::StatusOr<SmtpSettings> MergeStoredCredential(const SmtpSettings& update,
                                                   const SmtpSettings* stored,
                                                   const std::string& default_authority) {
  SmtpSettings merged = update;
  if (stored == nullptr || !WantsStoredCredential(update, *stored)) return merged;
  const std::vector<std::string> changed =
      ChangedDestinations(ResolveDefaults(update, default_authority),
                          ResolveDefaults(*stored, default_authority));
  if (!changed.empty()) {
    std::vector<std::string> errors;
    for (const std::string& field : changed) {
      errors.push_back(absl::StrCat(
          "settings.", field,
          ": differs from the saved settings, and the stored credential is only sent where it "
          "was saved and tested: enter the client secret (or the certificate's private key) "
          "again"));
    }
    return absl::InvalidArgumentError(absl::StrJoin(errors, "; "));
  }
  switch (merged.credential_case()) {
    case SmtpSettings::CREDENTIAL_NOT_SET:
      if (stored->has_client_secret()) *merged.mutable_client_secret() = stored->client_secret();
      if (stored->has_certificate()) *merged.mutable_certificate() = stored->certificate();
      break;
    case SmtpSettings::kClientSecret:
      merged.mutable_client_secret()->set_secret(stored->client_secret().secret());
      break;
    case SmtpSettings::kCertificate:
      merged.mutable_certificate()->set_private_key_pem(stored->certificate().private_key_pem());
      break;
  }
  return merged;
}

absl::Status InlineTrustStores(SmtpSettings* resolved) {
  std::vector<std::pair<const char*, v1::TrustStore*>> stores;
  if (resolved->has_smtp_trust_store()) {
    stores.emplace_back("smtp_trust_store", resolved->mutable_smtp_trust_store());
  }
  if (resolved->has_authority_trust_store()) {
    stores.emplace_back("authority_trust_store", resolved->mutable_authority_trust_store());
  }
  std::vector<std::string> errors;
  for (const auto& [field, trust] : stores) {
    absl::StatusOr<std::string> pem;
    switch (trust->source_case()) {
      case v1::TrustStore::kCaFile:
        pem = crypto::ReadCaBundleFile(trust->ca_file());
        if (!pem.ok()) errors.push_back(absl::StrCat("settings.", field, ".ca_file: ",
                                                     pem.status().message()));
        break;
      case v1::TrustStore::kCaBundlePem:
        pem = crypto::CaCertificatesOnly(trust->ca_bundle_pem());
        if (!pem.ok()) errors.push_back(absl::StrCat("settings.", field, ".ca_bundle_pem: ",
                                                     pem.status().message()));
        break;
      case v1::TrustStore::SOURCE_NOT_SET:
        continue;
    }
    if (pem.ok()) trust->set_ca_bundle_pem(*std::move(pem));
  }
  if (errors.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrJoin(errors, "; "));
}

std::string SettingsFingerprint(const SmtpSettings& resolved) {
  return ProtoSha256Hex(resolved);
}

}  // namespace mailroom::broker
