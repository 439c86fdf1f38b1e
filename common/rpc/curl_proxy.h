// Provides what mailroom's two libcurl clients (the token endpoint's HTTPS transport and the
// SMTP client) share about an HTTP(S) proxy, the seed's fix for "connect timed out": its
// configuration, whether a host bypasses it (the no-proxy list), setting it on a handle
// (always a CONNECT tunnel, so the proxy sees "CONNECT host:port" and then only the
// end-to-end TLS of the server), the classified Diagnosis of a failure at the proxy (refused,
// unreachable, wants or refuses credentials, denies the CONNECT), and a probe that opens and
// closes one tunnel (Test Connection's proxy step). libcurl's proxy environment variables are
// never consulted. Stateless and thread-safe.
#ifndef MAILROOM_COMMON_RPC_CURL_PROXY_H_
#define MAILROOM_COMMON_RPC_CURL_PROXY_H_

#include <curl/curl.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/optional.h"
#include "common/base/diagnosis.h"

namespace mailroom {

struct ProxyConfig {
  // "http://host:port" or "https://host:port" (TLS to the proxy too); empty: no proxy.
  std::string url;
  // "user:password" for the proxy's Basic authentication; empty: none. A secret: whoever
  // reads it registers it with the Redactor (common/base/redactor.h).
  std::string credentials;
  // Hosts reached directly (see BypassesProxy).
  std::vector<std::string> no_proxy;
  // An https:// proxy's certificate is verified against these CA certificates (PEM), plus
  // the system store when use_system_roots.
  std::string ca_pem;
  bool use_system_roots = true;
};

// Whether a connection to `host` goes directly: no proxy URL, or `host` matches an entry of
// no_proxy. An entry is "*" (every host); a host name, which matches itself and its
// subdomains, with or without a leading dot ("contoso.com" and ".contoso.com" both match
// "smtp.contoso.com"); an IPv4 or IPv6 address; or a CIDR block ("10.0.0.0/8", "fd00::/8")
// matching addresses in it. Names compare case-insensitively, without a trailing dot.
bool BypassesProxy(const ProxyConfig& proxy, absl::string_view host);

// Why `entry` is not a no_proxy entry of the forms above; empty if it is one.
std::string NoProxyEntryProblem(absl::string_view entry);

// The host (without brackets) and port (the scheme's default if none) of `url`, as a proxy is
// asked to CONNECT to; false if libcurl cannot parse it.
bool HostAndPortOfUrl(const std::string& url, std::string* host, int* port);

// Sets `proxy` on `curl` for a connection to `host`: no proxy at all when BypassesProxy (and
// none from the environment), else a CONNECT tunnel (also for plain http:// and smtp://, so
// the proxy relays bytes and never a request it could read or change), Basic credentials if
// any, and for an https:// proxy its trust. Returns whether the proxy is used.
bool ApplyProxy(CURL* curl, const ProxyConfig& proxy, absl::string_view host);

// Classifies a failed transfer on a handle that ApplyProxy set a proxy on: a Diagnosis when
// the failure happened on the way through the proxy (could not reach it, it wanted or refused
// credentials, it refused the CONNECT, it could not reach `target` itself, or TLS to an
// https:// proxy failed); nullopt when the tunnel was up and the failure lies beyond it.
// `target` is the "host:port" the tunnel was for; `error_text` libcurl's error message. The
// caller sets the Diagnosis's endpoint.
absl::optional<Diagnosis> DiagnoseProxyFailure(CURL* curl, CURLcode code, const ProxyConfig& proxy,
                                               absl::string_view target,
                                               absl::string_view error_text);

// Opens a CONNECT tunnel through `proxy` to host:port and closes it without sending anything
// through it: Test Connection's proxy step. Returns a line for the admin ("CONNECT host:port:
// 200"), or an error carrying the Diagnosis (its endpoint "host:port").
absl::StatusOr<std::string> ProbeProxyTunnel(const ProxyConfig& proxy, const std::string& host,
                                             int port, absl::Duration timeout);

}  // namespace mailroom

#endif  // MAILROOM_COMMON_RPC_CURL_PROXY_H_
