#include "common/base/diagnosis.h"

#include <string>
#include <utility>

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/base/utf8.h"

namespace mailroom {
namespace {

using ::mailroom::common::v1::FailureCause;
namespace fc = ::mailroom::common::v1;

constexpr char kDiagnosisUrl[] = "type.googleapis.com/mailroom.common.v1.Diagnosis";

// The seed's words for a PKIX failure (Java's, as ISE shows them).
constexpr char kUntrustedChainTitle[] =
    "PKIX path building failed: unable to find valid certification path to requested target";

struct CauseText {
  FailureCause cause;
  const char* title;
  const char* fix;
  bool retryable;
};

// Titles use the seed's GUI strings where the product has one.
constexpr CauseText kCauses[] = {
    {fc::FAILURE_CAUSE_CONNECT_TIMEOUT, "Connection failed: connect timed out",
     "Check the proxy and firewall configuration: the node must reach the host on this port "
     "(587 for smtp.office365.com, 443 for the token endpoint); where only a proxy can, set it "
     "in settings.proxy.",
     true},
    {fc::FAILURE_CAUSE_DNS_RESOLUTION_FAILED, "Host name not found",
     "Check the host name and the node's DNS configuration.", true},
    {fc::FAILURE_CAUSE_CONNECTION_REFUSED, "Connection refused",
     "Nothing accepts connections on that host and port: check the host name and port "
     "(smtp.office365.com, 587).",
     true},
    {fc::FAILURE_CAUSE_CONNECTION_LOST, "Connection lost",
     "The server closed the connection or stopped answering; this is retried automatically.",
     true},
    // The proxy is the site's, not mailroom's: its policy or its credentials can be fixed there,
    // so a role node keeps mail queued (retryable) rather than failing it meanwhile.
    {fc::FAILURE_CAUSE_PROXY_CONNECTION_REFUSED, "Connection to the proxy refused",
     "Nothing accepts connections at the proxy's host and port: check settings.proxy.url, and "
     "that the proxy is running.",
     true},
    {fc::FAILURE_CAUSE_PROXY_UNREACHABLE, "Proxy unreachable",
     "The proxy could not be reached, or did not answer: check the host name and port in "
     "settings.proxy.url, and the firewall between this node and the proxy.",
     true},
    {fc::FAILURE_CAUSE_PROXY_AUTH_REQUIRED, "Proxy requires authentication (407)",
     "The proxy wants a user name and password: put \"user:password\" in a file on the "
     "broker's node (mode 0600) and name it in settings.proxy.credentials_file.",
     true},
    {fc::FAILURE_CAUSE_PROXY_AUTH_REJECTED, "Proxy authentication failed",
     "The proxy refused the user name and password in settings.proxy.credentials_file: check "
     "the file's \"user:password\" with the proxy's administrator, then test and save again.",
     true},
    {fc::FAILURE_CAUSE_PROXY_CONNECT_DENIED, "Proxy denied the CONNECT tunnel",
     "The proxy's policy does not allow a tunnel to this host and port: have CONNECT to port 587 "
     "(SMTP) and 443 (token endpoint) allowed for these hosts (squid: SSL_ports and http_access; "
     "tinyproxy: ConnectPort), or list the host in settings.proxy.no_proxy if it is reachable "
     "directly.",
     true},
    {fc::FAILURE_CAUSE_INVALID_TENANT, "Invalid OAuth endpoint or tenant identifier",
     "Check the Tenant ID (the Directory (tenant) ID of the app registration, or a verified "
     "domain of the tenant) and the authority host.",
     false},
    {fc::FAILURE_CAUSE_UNKNOWN_CLIENT, "Invalid client ID",
     "Check the Client ID: it must be the Application (client) ID of an app registered in "
     "this tenant.",
     false},
    {fc::FAILURE_CAUSE_INVALID_CLIENT_SECRET, "Invalid client secret",
     "Check the secret value: paste the secret's Value (shown only when it was created), "
     "not its Secret ID.",
     false},
    {fc::FAILURE_CAUSE_CLIENT_SECRET_EXPIRED, "Client secret expired",
     "Create a new client secret for the app registration in Entra ID, then enter its "
     "value and its expiry date.",
     false},
    {fc::FAILURE_CAUSE_MISSING_CREDENTIAL, "No client credential configured",
     "Enter a client secret (with its expiry date) or a certificate and private key.", false},
    {fc::FAILURE_CAUSE_INVALID_SCOPE, "Invalid scope",
     "Use the Exchange Online resource with /.default: https://outlook.office365.com/.default "
     "(the default when the scope is empty) or https://outlook.office.com/.default (the value "
     "ISE fills in); both ask for the app's SMTP.SendAsApp permission.",
     false},
    {fc::FAILURE_CAUSE_MISSING_CONSENT, "Admin consent missing",
     "In the app registration: API permissions > Add > Office 365 Exchange Online > "
     "Application permissions > SMTP.SendAsApp, then Grant admin consent.",
     false},
    {fc::FAILURE_CAUSE_RESOURCE_PRINCIPAL_MISSING, "Exchange Online not found in the tenant",
     "The tenant has no Exchange Online service principal; check the tenant and the scope's "
     "resource.",
     false},
    {fc::FAILURE_CAUSE_CERTIFICATE_ASSERTION_REJECTED, "Certificate credential rejected",
     "Upload this certificate (public part) to the app registration's Certificates & "
     "secrets, and check that the node's clock is correct (NTP).",
     false},
    {fc::FAILURE_CAUSE_CONDITIONAL_ACCESS_BLOCKED, "Blocked by Conditional Access",
     "A Conditional Access policy or security defaults block this app: exclude the app "
     "from the policy.",
     false},
    {fc::FAILURE_CAUSE_TOKEN_ENDPOINT_THROTTLED, "Token endpoint throttled the request",
     "Retried automatically after Retry-After. Persistent throttling means another client of "
     "this app is requesting tokens without caching them.",
     true},
    {fc::FAILURE_CAUSE_TOKEN_ENDPOINT_UNAVAILABLE, "Token endpoint unavailable",
     "A transient Entra ID service error; retried automatically with backoff.", true},
    {fc::FAILURE_CAUSE_TOKEN_REQUEST_REJECTED, "Token request rejected",
     "The token endpoint refused the request; see its error and codes below.", false},
    {fc::FAILURE_CAUSE_TOKEN_RESPONSE_INVALID, "Invalid token response",
     "The token endpoint answered without a usable access token; check the authority host "
     "(is it really the Entra ID token endpoint, not a proxy page?).",
     true},
    {fc::FAILURE_CAUSE_UNTRUSTED_CERTIFICATE_CHAIN, kUntrustedChainTitle,
     "The server's certificate chain is not trusted: add its issuing and root CA "
     "certificates (for Microsoft: Microsoft Azure RSA TLS Issuing CA and DigiCert Global "
     "Root G2) to the trust store, trusted for client-server communication. The chain the "
     "server sent is listed below.",
     false},
    {fc::FAILURE_CAUSE_CERTIFICATE_NAME_MISMATCH, "Certificate does not match the host name",
     "Use the host name the certificate was issued for (smtp.office365.com), not an IP "
     "address or alias.",
     false},
    {fc::FAILURE_CAUSE_TLS_HANDSHAKE_FAILED, "TLS handshake failed",
     "Check for a TLS-intercepting proxy or firewall between the node and the server.", true},
    {fc::FAILURE_CAUSE_STARTTLS_UNAVAILABLE, "STARTTLS not offered",
     "The server does not offer STARTTLS, and a token is never sent in plaintext: use "
     "smtp.office365.com port 587.",
     false},
    {fc::FAILURE_CAUSE_XOAUTH2_UNAVAILABLE, "AUTH XOAUTH2 not offered",
     "The server does not offer OAuth authentication: check the host and port, and that SMTP "
     "AUTH is enabled.",
     false},
    {fc::FAILURE_CAUSE_MAILBOX_AUTH_REJECTED, "Invalid email address",
     "The token was accepted by Entra ID but the mailbox refused it: run New-ServicePrincipal "
     "-AppId <client id> -ObjectId <object id> with the Enterprise Application's object id "
     "(not the App Registration's), then Add-MailboxPermission -Identity <mailbox> -User "
     "<service principal id> -AccessRights FullAccess; the Username must be the mailbox's "
     "full address.",
     false},
    {fc::FAILURE_CAUSE_SMTP_AUTH_DISABLED, "SMTP AUTH is disabled",
     "Enable authenticated SMTP for the mailbox: Set-CASMailbox -Identity <mailbox> "
     "-SmtpClientAuthenticationDisabled $false (and check the tenant-wide setting and "
     "security defaults).",
     false},
    {fc::FAILURE_CAUSE_CLIENT_NOT_AUTHENTICATED, "Client not authenticated to send mail",
     "The server wants authentication before MAIL FROM: turn on Use Authentication Settings.",
     false},
    {fc::FAILURE_CAUSE_SEND_AS_DENIED, "Send As denied",
     "The From address is not the authenticated mailbox: use the mailbox (the Username) as "
     "the From address, or grant the app Send As on that address.",
     false},
    {fc::FAILURE_CAUSE_CONCURRENT_CONNECTION_LIMIT, "Concurrent connection limit exceeded",
     "Exchange allows 3 connections per mailbox; retried automatically. Check that nothing "
     "else sends from this mailbox.",
     true},
    {fc::FAILURE_CAUSE_SUBMISSION_QUOTA_EXCEEDED, "Daily sending quota exceeded",
     "The mailbox reached its daily recipient limit (10,000); sending resumes when the "
     "24-hour window rolls over.",
     true},
    {fc::FAILURE_CAUSE_MAILBOX_FULL, "Sending mailbox is full",
     "The sending mailbox's Sent Items filled it: clean it up or raise its quota.", false},
    {fc::FAILURE_CAUSE_MESSAGE_TOO_LARGE, "Message too large",
     "Reduce the message size below the server's limit.", false},
    {fc::FAILURE_CAUSE_RECIPIENT_REJECTED, "Recipient rejected",
     "Check the recipient's address.", false},
    {fc::FAILURE_CAUSE_SMTP_TRANSIENT, "Temporary SMTP failure",
     "The server deferred the message; retried automatically.", true},
    {fc::FAILURE_CAUSE_SMTP_PERMANENT, "SMTP server refused the message",
     "See the server's reply below.", false},
    {fc::FAILURE_CAUSE_GRAPH_MAIL_SEND_NOT_GRANTED, "Mail.Send not granted for Microsoft Graph",
     "In the app registration: API permissions > Add > Microsoft Graph > Application "
     "permissions > Mail.Send, then Grant admin consent (the Graph token's roles claim must "
     "list Mail.Send).",
     false},
    {fc::FAILURE_CAUSE_GRAPH_APPLICATION_ACCESS_POLICY, "Blocked by an application access policy",
     "An application access policy (or RBAC for Applications) limits the mailboxes this app may "
     "use, and this mailbox is not among them: add the mailbox to the policy's mail-enabled "
     "security group (Test-ApplicationAccessPolicy -Identity <mailbox> -AppId <client id> "
     "shows the verdict).",
     false},
    {fc::FAILURE_CAUSE_GRAPH_SEND_AS_DENIED, "Send As denied (Graph)",
     "The From address is not the sending mailbox: use the mailbox as the From address, or "
     "grant Send As on that address (Add-RecipientPermission -AccessRights SendAs).",
     false},
    {fc::FAILURE_CAUSE_GRAPH_MAILBOX_NOT_ENABLED, "Mailbox not enabled for the Graph API",
     "Graph answered MailboxNotEnabledForRESTAPI: the mailbox is inactive, soft-deleted, hosted "
     "on-premises or has no Exchange Online licence. Use a licensed Exchange Online mailbox.",
     false},
    {fc::FAILURE_CAUSE_GRAPH_MAILBOX_NOT_FOUND, "Mailbox not found (Graph)",
     "No user or mailbox of that address exists in the tenant: check the mailbox address (its "
     "user principal name or primary SMTP address).",
     false},
    {fc::FAILURE_CAUSE_GRAPH_TOKEN_REJECTED, "Graph refused the access token",
     "Graph answered 401: the token is expired or not for Microsoft Graph. A fresh token is "
     "fetched and the message retried once; if it persists, check that the broker asks for "
     "the scope https://graph.microsoft.com/.default.",
     false},
    {fc::FAILURE_CAUSE_GRAPH_THROTTLED, "Microsoft Graph throttled the request",
     "Retried automatically after Retry-After. Persistent throttling means something else "
     "sends through Graph for this mailbox (Graph allows 4 concurrent requests per mailbox).",
     true},
    {fc::FAILURE_CAUSE_GRAPH_SERVICE_ERROR, "Microsoft Graph service error",
     "Graph failed or did not answer after the request was sent; retried automatically. The "
     "message may already have gone: a duplicate carries the same Message-ID.",
     true},
    {fc::FAILURE_CAUSE_GRAPH_REQUEST_REJECTED, "Microsoft Graph refused the message",
     "See Graph's error code and message below.", false},
    {fc::FAILURE_CAUSE_SETTINGS_NOT_CONFIGURED, "SMTP settings not configured",
     "Configure the SMTP server settings on the broker and run Test Connection.", false},
    {fc::FAILURE_CAUSE_BROKER_UNAVAILABLE, "Token broker unavailable",
     "The node cannot reach the token broker on the primary PAN; queued mail is sent when "
     "it returns.",
     true},
    {fc::FAILURE_CAUSE_MAILBOX_CONNECTIONS_IN_USE, "The mailbox's connections are all in use",
     "The cluster's nodes hold every connection this mailbox may have open at once (Exchange "
     "allows 3), so Test Connection opened none: a fourth would be refused with 432 4.3.2. "
     "Run it again when the nodes are less busy; mailroomctl quota shows who holds them.",
     true},
    {fc::FAILURE_CAUSE_MAILBOX_SEND_LIMIT_REACHED, "The mailbox's sending limit is reached",
     "The cluster has used the mailbox's messages per minute (or recipients per day, or the "
     "mailbox is paused), so the test message was not sent. Run Test Connection again in a "
     "minute, or without a test recipient.",
     true},
    {fc::FAILURE_CAUSE_UNKNOWN, "Unexpected failure", "See the raw reply below.", false},
};

const CauseText& TextOf(FailureCause cause) {
  for (const CauseText& text : kCauses) {
    if (text.cause == cause) return text;
  }
  return kCauses[sizeof(kCauses) / sizeof(kCauses[0]) - 1];
}

}  // namespace

Diagnosis MakeDiagnosis(FailureCause cause, absl::string_view raw_reply) {
  const CauseText& text = TextOf(cause);
  Diagnosis diagnosis;
  diagnosis.set_cause(cause);
  diagnosis.set_title(text.title);
  diagnosis.set_fix(text.fix);
  diagnosis.set_retryable(text.retryable);
  SetRawReply(&diagnosis, raw_reply);
  return diagnosis;
}

void SetRawReply(Diagnosis* diagnosis, absl::string_view raw) {
  // raw_reply is a proto3 string: with a byte that is not UTF-8 (a Latin-1 reply text, a
  // truncated character) the Diagnosis serializes with an error and no longer parses, so it
  // is lost on its way to the admin (found by tests/fuzz/smtp_reply_fuzzer.cc).
  static constexpr absl::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD
  if (raw.size() <= kMaxRawReplyBytes && IsValidUtf8(raw)) {
    diagnosis->set_raw_reply(std::string(raw));
    return;
  }
  std::string kept;
  size_t i = 0;
  while (i < raw.size()) {
    const size_t length = Utf8SequenceLength(raw, i);
    const absl::string_view piece = length > 0 ? raw.substr(i, length) : kReplacement;
    if (kept.size() + piece.size() > kMaxRawReplyBytes) break;
    kept.append(piece.data(), piece.size());
    i += length > 0 ? length : 1;
  }
  if (i < raw.size()) absl::StrAppend(&kept, " [... ", raw.size() - i, " more bytes left out]");
  diagnosis->set_raw_reply(std::move(kept));
}

absl::string_view FailureTitle(FailureCause cause) { return TextOf(cause).title; }

void NameConnectHost(absl::string_view host, Diagnosis* diagnosis) {
  const char* detail = nullptr;
  switch (diagnosis->cause()) {
    case fc::FAILURE_CAUSE_CONNECT_TIMEOUT: detail = "connect timed out"; break;
    case fc::FAILURE_CAUSE_CONNECTION_REFUSED: detail = "connection refused"; break;
    case fc::FAILURE_CAUSE_DNS_RESOLUTION_FAILED: detail = "host name not found"; break;
    default: return;
  }
  if (host.empty()) return;
  diagnosis->set_title(absl::StrCat("Connection to ", host, " failed: ", detail));
}

std::string UntrustedChainFix(absl::string_view trust_store_field) {
  return absl::StrCat(
      "The server's certificate chain is not trusted: add its issuing and root CA "
      "certificates (for Microsoft: Microsoft Azure RSA TLS Issuing CA and DigiCert Global "
      "Root G2) to settings.",
      trust_store_field,
      " (ca_file or ca_bundle_pem), trusted for client-server communication, then test and "
      "save again. The chain the server sent is listed below.");
}

absl::Status WithDiagnosis(absl::Status status, const Diagnosis& diagnosis) {
  status.SetPayload(kDiagnosisUrl, absl::Cord(diagnosis.SerializeAsString()));
  return status;
}

absl::optional<Diagnosis> DiagnosisOf(const absl::Status& status) {
  absl::optional<absl::Cord> payload = status.GetPayload(kDiagnosisUrl);
  if (!payload.has_value()) return absl::nullopt;
  Diagnosis diagnosis;
  if (!diagnosis.ParseFromString(std::string(*payload))) return absl::nullopt;
  return diagnosis;
}

absl::Status DiagnosedError(const Diagnosis& diagnosis, absl::string_view detail) {
  const std::string message =
      detail.empty() ? diagnosis.title() : absl::StrCat(diagnosis.title(), ": ", detail);
  absl::Status status = diagnosis.retryable() ? absl::UnavailableError(message)
                                              : absl::FailedPreconditionError(message);
  return WithDiagnosis(std::move(status), diagnosis);
}

std::string FormatDiagnosis(const Diagnosis& diagnosis) {
  std::string out = absl::StrCat(diagnosis.title(), "\n  fix: ", diagnosis.fix());
  if (diagnosis.codes_size() > 0) {
    absl::StrAppend(&out, "\n  codes: ", absl::StrJoin(diagnosis.codes(), ", "));
  }
  if (!diagnosis.endpoint().empty()) absl::StrAppend(&out, "\n  endpoint: ", diagnosis.endpoint());
  if (!diagnosis.raw_reply().empty()) {
    absl::StrAppend(&out, "\n  server said: ", diagnosis.raw_reply());
  }
  return out;
}

}  // namespace mailroom
