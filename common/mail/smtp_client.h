// Provides SmtpSession, mailroom's SMTP submission client (libcurl 7.88): one connection to
// the server, opened with STARTTLS and authenticated with AUTH XOAUTH2, kept open and reused
// for message after message (as Exchange Online wants: few connections, many messages). Every
// failure is classified into a Diagnosis (common/base/diagnosis.h) from libcurl's result and the
// server's reply codes, with the server's reply text kept beside it. A token is never sent
// before TLS is up, and the protocol transcript it keeps has every credential redacted.
// Used by every role's outbox and by the broker's Test Connection.
// SmtpSession is NOT thread-safe: use one per thread (or per outbox worker).
#ifndef MAILROOM_COMMON_SMTP_CLIENT_H_
#define MAILROOM_COMMON_SMTP_CLIENT_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/base/diagnosis.h"
#include "common/mail/smtp_reply.h"
#include "common/rpc/curl_proxy.h"
#include "common/rpc/curl_tls.h"

namespace mailroom {

namespace smtp_internal {
class Recorder;
struct CurlHandle;
}  // namespace smtp_internal

// Where and how to connect.
struct SmtpEndpoint {
  // Host name (or address) of the submission server; TLS checks the certificate against it.
  std::string host = "smtp.office365.com";
  int port = 587;
  // Connecting: TCP, greeting, EHLO, STARTTLS, TLS handshake and AUTH together.
  absl::Duration connect_timeout = absl::Seconds(30);
  // Longest wait for any one server reply (after DATA's final "." too); also the window
  // of libcurl's low-speed check (less than 1 byte/s for this long aborts a transfer).
  absl::Duration reply_timeout = absl::Seconds(60);
  // Upper bound on one Connect() or Send() as a whole; zero means none.
  absl::Duration operation_timeout = absl::Minutes(10);
  // A connection older than this is not reused (a new one is opened and the old one
  // closed); zero means no limit.
  absl::Duration max_connection_age = absl::Minutes(10);
  // A connection idle for longer than this is not reused.
  absl::Duration max_idle = absl::Seconds(60);
  // Trust: a PEM bundle file and/or an in-memory PEM bundle, in addition to the system's
  // roots when use_system_roots is true. With neither, use_system_roots must be true.
  std::string ca_file;
  std::string ca_pem;
  bool use_system_roots = true;
  // If set, connect to this address instead of resolving `host` (the certificate is still
  // checked against `host`): for split-horizon DNS, and for tests.
  std::string connect_address;
  // The name sent with EHLO; empty means this machine's host name.
  std::string ehlo_name;
  // An HTTP(S) proxy to tunnel through (CONNECT host:port, then STARTTLS end to end inside
  // the tunnel); an empty url, or `host` in its no_proxy list, means a direct connection.
  ProxyConfig proxy;
  // TEST ONLY: talk to a server without STARTTLS (e.g. Postfix's smtp-sink, which cannot do
  // TLS), to exercise reply handling. With it set, a session refuses to do anything while it
  // holds a bearer token, so a token can never travel in plaintext.
  bool allow_plaintext_for_tests = false;
};

// What Connect() saw; also kept, as far as it got, when Connect() fails (last_connect()).
struct ConnectReport {
  std::string endpoint;        // "smtp://host:port"
  std::string proxy;           // the proxy's URL when the connection went through one
  std::string proxy_reply;     // its answer to CONNECT: "HTTP/1.1 200 Connection established"
  absl::Duration tcp_connect;  // until the TCP connection (to the proxy, if any) was up
  absl::Duration tls;          // greeting, EHLO, STARTTLS and the TLS handshake
  absl::Duration auth;         // AUTH XOAUTH2 until the server's final reply
  absl::Duration total;
  SmtpReply greeting;    // "220 ... ESMTP ..."
  SmtpReply ehlo;        // the last EHLO reply: the capabilities offered after STARTTLS
  SmtpReply auth_reply;  // "235 2.7.0 Authentication successful"; code 0 without a token
  // The chain the server presented, leaf first. After an UNTRUSTED_CERTIFICATE_CHAIN failure
  // it comes from a second connection made without verification and without credentials.
  std::vector<CertificateSummary> certificates;
  std::vector<std::string> transcript;  // redacted, as Transcript()
};

// The outcome of RCPT TO for one recipient.
struct RecipientResult {
  std::string address;
  bool accepted = false;
  // The server's reply to RCPT TO; code 0 if the command was never sent.
  SmtpReply reply;
};

struct SendResult {
  // The server accepted the message (for at least one recipient: see `recipients`).
  bool ok = false;
  // The final reply: "250 2.0.0 OK <id> [Hostname=...]" / "250 2.0.0 Ok: queued as ..."
  // on success, the failing reply on failure (code 0 when the failure had no reply).
  SmtpReply reply;
  // Why it failed; cause FAILURE_CAUSE_UNSPECIFIED when ok. endpoint is "smtp://host:port".
  Diagnosis diagnosis;
  DeliveryOutcome outcome = DeliveryOutcome::kPermanent;
  // One entry per recipient, in the order given.
  std::vector<RecipientResult> recipients;
  // False when the message went over a connection that was already open (reuse).
  bool new_connection = false;
  absl::Duration duration;
};

class SmtpSession {
 public:
  // `username` is the mailbox the token is for (the XOAUTH2 user=), e.g. the From address.
  SmtpSession(SmtpEndpoint endpoint, std::string username);
  ~SmtpSession();  // Close()s.
  SmtpSession(const SmtpSession&) = delete;
  SmtpSession& operator=(const SmtpSession&) = delete;

  // Sets the bearer token for AUTH XOAUTH2, registering it with Redactor::Global() first.
  // Empty means no AUTH (a trusted relay). A token different from the current one closes
  // the open connection: the next operation authenticates afresh with the new token.
  void SetBearerToken(std::string token);

  // Opens a fresh connection and goes through greeting, EHLO, STARTTLS (required), EHLO and
  // AUTH XOAUTH2 (when a token is set), then ends with NOOP, so that the connection stays
  // open for Send() (libcurl never reuses a CURLOPT_CONNECT_ONLY connection, so that option
  // is not used). Errors carry a Diagnosis (DiagnosisOf) with endpoint set; the report as far
  // as it got is in last_connect() either way. Calling it is optional: Send() connects on
  // demand.
  absl::StatusOr<ConnectReport> Connect();
  const ConnectReport& last_connect() const { return last_connect_; }

  // Submits one message: MAIL FROM, one RCPT TO per recipient (a refused recipient does not
  // stop the others), DATA. Opens a connection if none is open, else reuses it.
  // `rfc5322_bytes` is the whole message, headers and body, with CRLF line endings;
  // dot-stuffing is done here. Addresses are bare addr-specs (no angle brackets);
  // `envelope_from` may be empty for the null reverse path. The whole send, connecting
  // included, ends within `time_limit` (and operation_timeout): at that point libcurl drops
  // the transfer (a network failure, no final reply).
  SendResult Send(const std::string& envelope_from, const std::vector<std::string>& recipients,
                  const std::string& rfc5322_bytes,
                  absl::Duration time_limit = absl::InfiniteDuration());

  // Ends the session with QUIT and closes the connection, and returns once the server has
  // closed its end too (at most kServerCloseWait later), so that a connection the caller opens
  // or hands on next is never counted by the server beside this one. The session stays usable:
  // the next operation connects again.
  void Close();
  static constexpr absl::Duration kServerCloseWait = absl::Seconds(1);

  // The protocol dialogue of the last Connect() or Send(): server lines "S: ...", client
  // lines "C: ...", libcurl's notes "* ..." (a proxy's CONNECT exchange comes first, in the
  // same form). Credentials are redacted (the AUTH line reads "C: AUTH XOAUTH2 [REDACTED]",
  // the proxy's "C: Proxy-Authorization: [REDACTED]"); message content is not included.
  std::vector<std::string> Transcript() const;

  const SmtpEndpoint& endpoint() const { return endpoint_; }

 private:
  absl::Status EnsureHandle();
  // "host:port", as a proxy is asked to CONNECT to.
  std::string Target() const;
  absl::Status CheckPlaintextPolicy() const;
  std::vector<CertificateSummary> FetchPresentedChain();

  const SmtpEndpoint endpoint_;
  const std::string endpoint_name_;  // "smtp://host:port"
  // The proxy connections go through; null when they are direct.
  const ProxyConfig* const proxy_;
  const std::string username_;
  std::string token_;
  // Records the dialogue of the current operation (libcurl's debug callback feeds it, and
  // libcurl writes its error messages into it): outlives the handle.
  std::unique_ptr<smtp_internal::Recorder> recorder_;
  // The libcurl easy handle, kept across operations so that its connection is reused.
  std::unique_ptr<smtp_internal::CurlHandle> handle_;
  ConnectReport last_connect_;
};

}  // namespace mailroom

#endif  // MAILROOM_COMMON_SMTP_CLIENT_H_
