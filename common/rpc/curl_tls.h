// Provides what mailroom's libcurl clients (the token endpoint's HTTPS transport, the SMTP
// client, and an https:// proxy in front of either) share about TLS: the certificate chain a
// server presented (from libcurl's CERTINFO) and its admin-facing text, whether a failed
// verification was the chain or the host name, and the system CA bundle to add to a private
// one. Stateless and thread-safe.
#ifndef MAILROOM_COMMON_RPC_CURL_TLS_H_
#define MAILROOM_COMMON_RPC_CURL_TLS_H_

#include <curl/curl.h>

#include <string>
#include <vector>

namespace mailroom {

// One certificate a server presented (leaf first), from libcurl's CERTINFO.
struct CertificateSummary {
  std::string subject;  // "O = mailroom testbed, CN = localhost"
  std::string issuer;
  std::string not_before;  // "Nov 29 22:48:58 2026 GMT"
  std::string not_after;
  std::string subject_alt_names;  // "DNS:localhost, IP Address:127.0.0.1"
  std::string pem;
};

// The chain of the last TLS handshake on `curl` (CURLOPT_CERTINFO must have been set).
std::vector<CertificateSummary> CertificatesOf(CURL* curl);

// "Certificates the server presented (leaf first):" and, per certificate, its subject,
// issuer, end of validity and names.
std::string FormatChain(const std::vector<CertificateSummary>& chain);

// After CURLE_PEER_FAILED_VERIFICATION: whether the host name (or IP address) did not match
// the certificate, as opposed to a chain that did not verify. (The chain verifies during the
// handshake, leaving its X509_V_ERR_* code; libcurl checks the name afterwards, leaving
// X509_V_OK or its initial 1.) `verify_result` gets CURLINFO_SSL_VERIFYRESULT if not null.
// `of_proxy`: the same about an https:// proxy's certificate (CURLINFO_PROXY_SSL_VERIFYRESULT).
bool HostNameMismatch(CURL* curl, long* verify_result = nullptr, bool of_proxy = false);

// The PEM content of libcurl's default CA bundle (the system store); empty if unreadable.
std::string SystemCaBundle(CURL* curl);

// `host` as it goes into a URL: an IPv6 address in brackets.
std::string HostForUrl(const std::string& host);

}  // namespace mailroom

#endif  // MAILROOM_COMMON_RPC_CURL_TLS_H_
