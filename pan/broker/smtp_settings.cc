#include "pan/broker/smtp_settings.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
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
#include "common/crypto/aes_gcm.h"
#include "common/crypto/ca_bundle.h"
#include "common/rpc/http_transport.h"
#include "pan/broker/mailbox_pool.h"
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

constexpr int kMaxNoProxyEntries = 64;
constexpr size_t kMaxProxyCredentials = 1024;

// Why `url` is not "http(s)://host:port" with nothing else; empty if it is.
std::string ProxyUrlProblem(absl::string_view url) {
  if (url.size() > 2048 || HasControlOrSpace(url)) return "must be a URL without spaces";
  absl::string_view rest = url;
  if (!absl::ConsumePrefix(&rest, "http://") && !absl::ConsumePrefix(&rest, "https://")) {
    return "must start with http:// or https:// (e.g. http://proxy.contoso.com:3128)";
  }
  rest = absl::StripSuffix(rest, "/");
  if (rest.find('@') != absl::string_view::npos) {
    return "must not carry a user name or password: put \"user:password\" in the file named "
           "by settings.proxy.credentials_file";
  }
  if (rest.find_first_of("/?#") != absl::string_view::npos) {
    return "must be only scheme, host and port (no path, query or fragment)";
  }
  const size_t colon = rest.rfind(':');
  int port = 0;
  if (colon == absl::string_view::npos || rest.back() == ']' ||
      !absl::SimpleAtoi(rest.substr(colon + 1), &port) || port < 1 || port > 65535) {
    return "must name the port, 1..65535 (e.g. http://proxy.contoso.com:3128)";
  }
  const absl::string_view host = rest.substr(0, colon);
  const bool bracketed = !host.empty() && host.front() == '[';
  if (host.empty() || bracketed != (host.back() == ']') ||
      (!bracketed && host.find(':') != absl::string_view::npos) ||
      NoProxyEntryProblem(host.front() == '[' ? host.substr(1, host.size() - 2) : host) != "" ||
      host == "*" || absl::StartsWith(host, ".")) {
    return "must name the proxy's host: a host name or an IP address";
  }
  return "";
}

// Whether two paths name the same file: the same text, the same real path, or the same
// device and inode (a hard link).
bool SameFile(const std::string& a, const std::string& b) {
  if (a == b) return true;
  char real_a[PATH_MAX];
  char real_b[PATH_MAX];
  if (realpath(a.c_str(), real_a) != nullptr && realpath(b.c_str(), real_b) != nullptr &&
      std::string(real_a) == real_b) {
    return true;
  }
  struct stat st_a;
  struct stat st_b;
  return stat(a.c_str(), &st_a) == 0 && stat(b.c_str(), &st_b) == 0 &&
         st_a.st_dev == st_b.st_dev && st_a.st_ino == st_b.st_ino;
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
  if (PoolUsesGraph(resolved) && resolved.graph_endpoint().empty()) {
    resolved.set_graph_endpoint(kDefaultGraphEndpoint);
  }
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
  // An HTTPS base URL (scheme and host) that a token or message is sent to.
  auto check_base_url = [&](absl::string_view field, const std::string& url,
                            absl::string_view example) {
    if (!absl::StartsWith(url, "https://") && !IsLoopbackHttpUrl(url)) {
      bad(field, "must be an https:// URL (plain http only on loopback, for tests)");
    } else if (HasControlOrSpace(url) || url.find('?') != std::string::npos) {
      bad(field, absl::StrCat("must be a plain URL such as ", example));
    }
  };
  if (s.transport() == v1::MAIL_TRANSPORT_GRAPH ||
      s.transport() == v1::MAIL_TRANSPORT_SMTP_WITH_GRAPH_FALLBACK) {
    if (!UsesAuthentication(s)) {
      bad("transport", absl::StrCat(s.transport() == v1::MAIL_TRANSPORT_GRAPH
                                        ? "GRAPH"
                                        : "SMTP_WITH_GRAPH_FALLBACK",
                                    " needs use_authentication: Graph accepts only OAuth tokens"));
    }
  } else if (!v1::MailTransport_IsValid(s.transport())) {
    bad("transport", "must be SMTP, GRAPH or SMTP_WITH_GRAPH_FALLBACK");
  }
  if (PoolUsesGraph(s)) {
    check_base_url("graph_endpoint", s.graph_endpoint(), kDefaultGraphEndpoint);
  }
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
    check_base_url("authority_host", s.authority_host(), "https://login.microsoftonline.com");
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
  const v1::ProxySettings& proxy = s.proxy();
  if (!proxy.credentials().empty()) {
    bad("proxy.credentials",
        "is read by the broker from the file named by proxy.credentials_file; leave it empty");
  }
  if (proxy.url().empty()) {
    if (!proxy.credentials_file().empty() || proxy.no_proxy_size() > 0 || proxy.has_trust_store()) {
      bad("proxy.url", "is required when credentials_file, no_proxy or trust_store is set");
    }
  } else if (const std::string problem = ProxyUrlProblem(proxy.url()); !problem.empty()) {
    bad("proxy.url", problem);
  }
  if (!proxy.credentials_file().empty() &&
      (proxy.credentials_file()[0] != '/' || HasControlOrSpace(proxy.credentials_file()))) {
    bad("proxy.credentials_file", "must be an absolute path on the broker's node");
  }
  if (proxy.no_proxy_size() > kMaxNoProxyEntries) {
    bad("proxy.no_proxy", absl::StrCat("has more than ", kMaxNoProxyEntries, " entries"));
  }
  for (int i = 0; i < proxy.no_proxy_size() && i < kMaxNoProxyEntries; ++i) {
    if (const std::string problem = NoProxyEntryProblem(proxy.no_proxy(i)); !problem.empty()) {
      bad(absl::StrCat("proxy.no_proxy[", i, "]"), problem);
    }
  }
  if (proxy.has_trust_store() && !absl::StartsWith(proxy.url(), "https://")) {
    bad("proxy.trust_store", "is only for an https:// proxy");
  }
  if (absl::Status pool = ValidateMailboxPool(s, prefix); !pool.ok()) {
    errors.emplace_back(pool.message());
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
  // Graph tokens go there, for the default mailbox or any pool mailbox on Graph: whatever the
  // transport now, since switching one to Graph later needs no secret.
  const auto graph_endpoint = [](const SmtpSettings& s) {
    return s.graph_endpoint().empty() ? std::string(kDefaultGraphEndpoint) : s.graph_endpoint();
  };
  if (graph_endpoint(update) != graph_endpoint(stored)) changed.push_back("graph_endpoint");
  // The token goes end to end over TLS through a proxy's tunnel, but where the secret's
  // requests travel is still its holder's decision (and a plain-http test authority would
  // cross the proxy in clear).
  if (update.proxy().url() != stored.proxy().url()) changed.push_back("proxy.url");
  if (update.proxy().credentials_file() != stored.proxy().credentials_file()) {
    changed.push_back("proxy.credentials_file");
  }
  if (!MessageDifferencer::Equals(update.proxy().trust_store(), stored.proxy().trust_store())) {
    changed.push_back("proxy.trust_store");
  }
  return changed;
}

// The saved proxy credentials, read from a file the admin only names, go only to the proxy
// they were saved for: naming the saved file for another proxy would hand its password to a
// host of the admin's choosing (the admin never typed it, so the client secret's rule,
// "enter it again", cannot apply). Appends an error per field that breaks the rule.
void CheckProxyCredentialsGoWhereSaved(const SmtpSettings& update, const SmtpSettings& stored,
                                       std::vector<std::string>* errors) {
  using ::google::protobuf::util::MessageDifferencer;
  const v1::ProxySettings& now = update.proxy();
  const v1::ProxySettings& saved = stored.proxy();
  if (now.credentials_file().empty() || saved.credentials_file().empty() ||
      !SameFile(now.credentials_file(), saved.credentials_file())) {
    return;
  }
  for (const auto& [field, differs] :
       {std::make_pair("url", now.url() != saved.url()),
        std::make_pair("trust_store",
                       !MessageDifferencer::Equals(now.trust_store(), saved.trust_store()))}) {
    if (!differs) continue;
    errors->push_back(absl::StrCat(
        "settings.proxy.", field,
        ": differs from the saved settings, and the saved proxy credentials "
        "(settings.proxy.credentials_file) go only to the proxy they were saved with: put this "
        "proxy's credentials in a new file on the broker's node and name that file"));
  }
}

}  // namespace

absl::StatusOr<SmtpSettings> MergeStoredCredential(const SmtpSettings& update,
                                                   const SmtpSettings* stored,
                                                   const std::string& default_authority) {
  SmtpSettings merged = update;
  if (stored == nullptr) return merged;
  std::vector<std::string> errors;
  CheckProxyCredentialsGoWhereSaved(update, *stored, &errors);
  const bool wants_stored = WantsStoredCredential(update, *stored);
  if (wants_stored) {
    for (const std::string& field : ChangedDestinations(ResolveDefaults(update, default_authority),
                                                        ResolveDefaults(*stored, default_authority))) {
      errors.push_back(absl::StrCat(
          "settings.", field,
          ": differs from the saved settings, and the stored credential is only sent where it "
          "was saved and tested: enter the client secret (or the certificate's private key) "
          "again"));
    }
  }
  if (!errors.empty()) return absl::InvalidArgumentError(absl::StrJoin(errors, "; "));
  if (!wants_stored) return merged;
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
  if (resolved->proxy().has_trust_store()) {
    stores.emplace_back("proxy.trust_store", resolved->mutable_proxy()->mutable_trust_store());
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

absl::Status LoadProxyCredentials(SmtpSettings* resolved) {
  v1::ProxySettings* proxy = resolved->mutable_proxy();
  proxy->clear_credentials();
  const std::string& path = proxy->credentials_file();
  if (path.empty()) return absl::OkStatus();
  auto bad = [](absl::string_view problem) {
    return absl::InvalidArgumentError(
        absl::StrCat("settings.proxy.credentials_file: ", problem));
  };
  // O_NONBLOCK: a FIFO named here must not hang the broker (it is refused below).
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0) {
    return bad(absl::StrCat("cannot open ", path, " on the broker's node: ", strerror(errno)));
  }
  std::string content;
  absl::Status checked;
  // Checks go through the open descriptor, so they apply to the file actually read.
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    checked = bad(absl::StrCat(path, " is not a regular file"));
  } else if (absl::Status mode = crypto::CheckKeyFileMode(path, st.st_mode, st.st_gid, getegid(),
                                                          "proxy credentials file");
             !mode.ok()) {
    checked = bad(mode.message());
  } else {
    char buffer[kMaxProxyCredentials + 3];
    ssize_t n = 0;
    while (content.size() <= kMaxProxyCredentials + 2 &&
           (n = read(fd, buffer, sizeof(buffer))) > 0) {
      content.append(buffer, static_cast<size_t>(n));
    }
    if (n < 0) checked = bad(absl::StrCat("cannot read ", path, ": ", strerror(errno)));
  }
  close(fd);
  if (!checked.ok()) return checked;
  absl::string_view line = content;
  if (!absl::ConsumeSuffix(&line, "\r\n")) absl::ConsumeSuffix(&line, "\n");
  const size_t colon = line.find(':');
  bool valid = !line.empty() && line.size() <= kMaxProxyCredentials &&
               colon != absl::string_view::npos && colon > 0;
  for (unsigned char c : line) valid = valid && c >= 0x20 && c < 0x7f;
  if (valid) proxy->set_credentials(std::string(line));
  std::fill(content.begin(), content.end(), '\0');  // it held the password
  if (!valid) {
    // Never quote the file: it may be anything the admin pointed at.
    return bad(absl::StrCat(path,
                            " must hold one line \"user:password\" (printable ASCII, the user "
                            "name without ':', at most ", kMaxProxyCredentials, " characters)"));
  }
  return absl::OkStatus();
}

ProxyConfig ProxyConfigOf(const SmtpSettings& resolved) {
  ProxyConfig config;
  const v1::ProxySettings& proxy = resolved.proxy();
  config.url = proxy.url();
  config.credentials = proxy.credentials();
  config.no_proxy.assign(proxy.no_proxy().begin(), proxy.no_proxy().end());
  config.ca_pem = proxy.trust_store().ca_bundle_pem();
  config.use_system_roots =
      !proxy.trust_store().exclude_system_roots() || config.ca_pem.empty();
  return config;
}

std::string SettingsFingerprint(const SmtpSettings& resolved) {
  return ProtoSha256Hex(resolved);
}

}  // namespace mailroom::broker
