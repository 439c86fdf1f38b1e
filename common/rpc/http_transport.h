// Provides HttpTransport, the interface through which mailroom makes HTTPS requests (the
// OAuth token endpoint, etcd's JSON gateway: common/etcd/etcd_client.h), and CurlHttpTransport, its libcurl implementation, optionally through
// an HTTP(S) proxy (a CONNECT tunnel: common/rpc/curl_proxy.h). Tests inject a fake transport.
// Transport-level failures are errors whose payload names the kind of failure (see
// TransportFailureOf), so callers can classify without parsing text; a failure at the proxy
// carries its Diagnosis too, and a certificate chain that did not verify comes with the chain
// the server presented (PresentedChainOf), fetched over a second connection that sends nothing.
// ParseRetryAfter reads a Retry-After header for every caller (token endpoint, Graph).
// CurlHttpTransport is thread-safe: each request uses its own handle; ParseRetryAfter is pure.
#ifndef MAILROOM_COMMON_HTTP_TRANSPORT_H_
#define MAILROOM_COMMON_HTTP_TRANSPORT_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/optional.h"
#include "common/base/diagnosis.h"
#include "common/rpc/curl_proxy.h"
#include "common/rpc/curl_tls.h"

namespace mailroom {

struct HttpRequest {
  std::string url;
  // The body of a POST: application/x-www-form-urlencoded unless `headers` names another
  // Content-Type (etcd's gateway takes application/json, Graph's MIME sendMail text/plain).
  std::string form_body;
  std::vector<std::pair<std::string, std::string>> headers;
  absl::Duration timeout = absl::Seconds(30);
};

struct HttpResponse {
  int status = 0;
  std::string body;
  // The Retry-After header, as sent; empty if absent. ParseRetryAfter (below) reads it.
  std::string retry_after;
  std::string content_type;
};

// Kinds of transport failure, carried in the error's payload.
enum class TransportFailure {
  kNone,
  kDns,            // the host name did not resolve
  kConnectRefused, // connection refused or unreachable
  kTimeout,        // connect or transfer timed out
  kTlsUntrusted,   // the server's certificate chain did not verify
  kTlsHandshake,   // other TLS failure
  kOther,
  kTlsNameMismatch,  // the server's certificate is not for the host name
  kProxy,            // the proxy failed (the error carries its Diagnosis: DiagnosisOf)
};

// The kind of transport failure an error carries, or kNone.
TransportFailure TransportFailureOf(const absl::Status& status);
// Returns `status` annotated with `failure`.
absl::Status WithTransportFailure(absl::Status status, TransportFailure failure);

// The Diagnosis of a transport failure (no HTTP answer): the proxy's own when the failure was
// at the proxy; otherwise the cause its TransportFailure names (a timeout CONNECT_TIMEOUT, an
// unclassified failure CONNECTION_LOST), with the error's text as the raw reply. Callers set
// the endpoint, and the fix of an UNTRUSTED_CERTIFICATE_CHAIN naming their trust store.
Diagnosis DiagnoseTransportFailure(const absl::Status& status);

// The chain the server presented when its certificate did not verify (kTlsUntrusted), leaf
// first; empty if the error carries none.
std::vector<CertificateSummary> PresentedChainOf(const absl::Status& status);
// `status` carrying `chain` (PresentedChainOf reads it back).
absl::Status WithPresentedChain(absl::Status status, const std::vector<CertificateSummary>& chain);

class HttpTransport {
 public:
  virtual ~HttpTransport() = default;
  // POSTs a form. Any HTTP status is a response; only transport failures are errors.
  virtual absl::StatusOr<HttpResponse> PostForm(const HttpRequest& request) = 0;
};

class CurlHttpTransport final : public HttpTransport {
 public:
  struct Options {
    // PEM bundle file to trust instead of the system store; empty means the system store.
    std::string ca_file;
    // In-memory PEM bundle to trust (takes precedence over ca_file).
    std::string ca_pem;
    // The proxy; an empty url means none (libcurl's environment variables are never
    // consulted, so behaviour does not change with the environment).
    ProxyConfig proxy;
    // A client certificate and its key (PEM files) for servers that ask for one (etcd with
    // --client-cert-auth); empty: none.
    std::string client_cert_file;
    std::string client_key_file;
  };

  explicit CurlHttpTransport(Options options);
  absl::StatusOr<HttpResponse> PostForm(const HttpRequest& request) override;

 private:
  Options options_;
};

// Whether `url` is "http://" to exactly localhost, 127.x.y.z or [::1], with an optional
// port: where plain http is tolerated (tests). "http://localhost.evil.example" is not.
bool IsLoopbackHttpUrl(absl::string_view url);

// The wait `header` asks for from `now`: delta-seconds ("120") or an HTTP-date (IMF-fixdate,
// "Sun, 06 Nov 1994 08:49:37 GMT"); zero for a date already past; at most `max`, because a
// server's Retry-After is advice and a day (or 2^62 s) would stop retries long after the
// throttling ended. nullopt when the header is absent, negative or unparsable: the caller's
// own default applies.
absl::optional<absl::Duration> ParseRetryAfter(absl::string_view header, absl::Time now,
                                               absl::Duration max);

}  // namespace mailroom

#endif  // MAILROOM_COMMON_HTTP_TRANSPORT_H_
