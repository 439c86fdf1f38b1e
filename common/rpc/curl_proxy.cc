#include "common/rpc/curl_proxy.h"

#include <arpa/inet.h>
#include <errno.h>

#include <cstring>
#include <memory>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/rpc/curl_tls.h"

namespace mailroom {
namespace {

namespace fc = ::mailroom::common::v1;

// An IPv4 or IPv6 address in network order (4 or 16 bytes); empty if `text` is neither.
std::string ParseAddress(absl::string_view text) {
  text = absl::StripPrefix(absl::StripSuffix(text, "]"), "[");
  const std::string copy(text);
  unsigned char buffer[16];
  if (inet_pton(AF_INET, copy.c_str(), buffer) == 1) {
    return std::string(reinterpret_cast<char*>(buffer), 4);
  }
  if (inet_pton(AF_INET6, copy.c_str(), buffer) == 1) {
    return std::string(reinterpret_cast<char*>(buffer), 16);
  }
  return "";
}

// A CIDR block "ADDRESS/BITS": the address and the prefix length; false if `entry` is not one.
bool ParseCidr(absl::string_view entry, std::string* address, int* bits) {
  const size_t slash = entry.find('/');
  if (slash == absl::string_view::npos) return false;
  *address = ParseAddress(entry.substr(0, slash));
  return !address->empty() && absl::SimpleAtoi(entry.substr(slash + 1), bits) && *bits >= 0 &&
         *bits <= static_cast<int>(address->size()) * 8 &&
         absl::ascii_isdigit(static_cast<unsigned char>(entry[slash + 1]));
}

bool InBlock(const std::string& address, const std::string& block, int bits) {
  if (address.size() != block.size()) return false;
  const int whole = bits / 8;
  if (std::memcmp(address.data(), block.data(), whole) != 0) return false;
  if (bits % 8 == 0) return true;
  const unsigned char mask = static_cast<unsigned char>(0xff << (8 - bits % 8));
  return (address[whole] & mask) == (block[whole] & mask);
}

std::string NormalizedName(absl::string_view name) {
  return absl::AsciiStrToLower(absl::StripSuffix(name, "."));
}

bool IsHostName(absl::string_view name) {
  if (name.empty() || name.size() > 253) return false;
  size_t label = 0;
  for (size_t i = 0; i <= name.size(); ++i) {
    if (i == name.size() || name[i] == '.') {
      if (label == 0 || label > 63) return false;
      label = 0;
      continue;
    }
    const unsigned char c = name[i];
    if (!absl::ascii_isalnum(c) && c != '-' && c != '_') return false;
    ++label;
  }
  return true;
}

bool IsHttpsProxy(const ProxyConfig& proxy) { return absl::StartsWith(proxy.url, "https://"); }

struct CurlDeleter {
  void operator()(CURL* curl) const { curl_easy_cleanup(curl); }
};

}  // namespace

bool BypassesProxy(const ProxyConfig& proxy, absl::string_view host) {
  if (proxy.url.empty()) return true;
  const std::string name = NormalizedName(absl::StripPrefix(absl::StripSuffix(host, "]"), "["));
  const std::string address = ParseAddress(name);
  for (const std::string& raw_entry : proxy.no_proxy) {
    const std::string entry = NormalizedName(raw_entry);
    if (entry == "*") return true;
    std::string block;
    int bits = 0;
    if (ParseCidr(entry, &block, &bits)) {
      if (!address.empty() && InBlock(address, block, bits)) return true;
      continue;
    }
    const std::string entry_address = ParseAddress(entry);
    if (!entry_address.empty()) {
      if (entry_address == address) return true;
      continue;
    }
    const absl::string_view domain = absl::StripPrefix(entry, ".");
    if (address.empty() && !domain.empty() &&
        (name == domain || absl::EndsWith(name, absl::StrCat(".", domain)))) {
      return true;
    }
  }
  return false;
}

std::string NoProxyEntryProblem(absl::string_view entry) {
  if (entry == "*") return "";
  std::string block;
  int bits = 0;
  if (ParseCidr(entry, &block, &bits) || !ParseAddress(entry).empty()) return "";
  if (entry.find('/') == absl::string_view::npos &&
      IsHostName(absl::StripSuffix(absl::StripPrefix(entry, "."), "."))) {
    return "";
  }
  return "must be \"*\", a host or domain name (a leading dot is allowed), an IP address, or a "
         "CIDR block such as 10.0.0.0/8";
}

bool HostAndPortOfUrl(const std::string& url, std::string* host, int* port) {
  CURLU* parsed = curl_url();
  if (parsed == nullptr) return false;
  char* host_part = nullptr;
  char* port_part = nullptr;
  const bool ok = curl_url_set(parsed, CURLUPART_URL, url.c_str(), 0) == CURLUE_OK &&
                  curl_url_get(parsed, CURLUPART_HOST, &host_part, 0) == CURLUE_OK &&
                  curl_url_get(parsed, CURLUPART_PORT, &port_part, CURLU_DEFAULT_PORT) ==
                      CURLUE_OK &&
                  absl::SimpleAtoi(port_part, port);
  if (ok) *host = std::string(absl::StripSuffix(absl::StripPrefix(host_part, "["), "]"));
  curl_free(host_part);
  curl_free(port_part);
  curl_url_cleanup(parsed);
  return ok;
}

bool ApplyProxy(CURL* curl, const ProxyConfig& proxy, absl::string_view host) {
  // Set explicitly either way: libcurl would otherwise read http_proxy / no_proxy from the
  // environment, and the node's behaviour would change with it.
  curl_easy_setopt(curl, CURLOPT_NOPROXY, "");
  if (BypassesProxy(proxy, host)) {
    curl_easy_setopt(curl, CURLOPT_PROXY, "");
    return false;
  }
  curl_easy_setopt(curl, CURLOPT_PROXY, proxy.url.c_str());
  curl_easy_setopt(curl, CURLOPT_PROXYTYPE,
                   static_cast<long>(IsHttpsProxy(proxy) ? CURLPROXY_HTTPS : CURLPROXY_HTTP));
  curl_easy_setopt(curl, CURLOPT_HTTPPROXYTUNNEL, 1L);
  if (!proxy.credentials.empty()) {
    const size_t colon = proxy.credentials.find(':');
    const std::string user = proxy.credentials.substr(0, colon);
    const std::string password =
        colon == std::string::npos ? "" : proxy.credentials.substr(colon + 1);
    curl_easy_setopt(curl, CURLOPT_PROXYUSERNAME, user.c_str());
    curl_easy_setopt(curl, CURLOPT_PROXYPASSWORD, password.c_str());
    curl_easy_setopt(curl, CURLOPT_PROXYAUTH, static_cast<long>(CURLAUTH_BASIC));
  }
  if (IsHttpsProxy(proxy)) {
    curl_easy_setopt(curl, CURLOPT_PROXY_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(curl, CURLOPT_PROXY_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(curl, CURLOPT_PROXY_SSLVERSION, static_cast<long>(CURL_SSLVERSION_TLSv1_2));
    if (!proxy.ca_pem.empty()) {
      std::string bundle = proxy.ca_pem;
      if (proxy.use_system_roots) absl::StrAppend(&bundle, "\n", SystemCaBundle(curl));
      curl_blob blob{bundle.data(), bundle.size(), CURL_BLOB_COPY};
      curl_easy_setopt(curl, CURLOPT_PROXY_CAINFO_BLOB, &blob);
    }
  }
  return true;
}

absl::optional<Diagnosis> DiagnoseProxyFailure(CURL* curl, CURLcode code, const ProxyConfig& proxy,
                                               absl::string_view target,
                                               absl::string_view error_text) {
  long connect_code = 0;
  curl_easy_getinfo(curl, CURLINFO_HTTP_CONNECTCODE, &connect_code);
  if (connect_code >= 200 && connect_code < 300) return absl::nullopt;  // the tunnel was up
  fc::FailureCause cause = fc::FAILURE_CAUSE_UNSPECIFIED;
  std::string what;
  std::string fix;
  if (connect_code == 407 || connect_code == 401) {
    // 407 is the standard answer; tinyproxy 1.11 answers wrong credentials with 401.
    cause = proxy.credentials.empty() ? fc::FAILURE_CAUSE_PROXY_AUTH_REQUIRED
                                      : fc::FAILURE_CAUSE_PROXY_AUTH_REJECTED;
    what = absl::StrCat("the proxy answered ", connect_code, " to CONNECT ", target,
                        proxy.credentials.empty() ? " (no proxy credentials are configured)"
                                                  : " with the configured credentials");
  } else if (connect_code == 502 || connect_code == 503 || connect_code == 504) {
    // The proxy itself could not reach the server: the server's problem, seen through it.
    cause = connect_code == 504 ? fc::FAILURE_CAUSE_CONNECT_TIMEOUT
                                : fc::FAILURE_CAUSE_CONNECTION_REFUSED;
    what = absl::StrCat("the proxy answered ", connect_code, " to CONNECT ", target,
                        ": it could not connect to the server");
  } else if (connect_code != 0) {
    cause = fc::FAILURE_CAUSE_PROXY_CONNECT_DENIED;
    what = absl::StrCat("the proxy answered ", connect_code, " to CONNECT ", target);
  } else {
    long os_errno = 0;
    switch (code) {
      case CURLE_COULDNT_RESOLVE_PROXY:
        cause = fc::FAILURE_CAUSE_PROXY_UNREACHABLE;
        what = "the proxy's host name does not resolve";
        break;
      case CURLE_COULDNT_CONNECT:
        curl_easy_getinfo(curl, CURLINFO_OS_ERRNO, &os_errno);
        cause = os_errno == ECONNREFUSED ? fc::FAILURE_CAUSE_PROXY_CONNECTION_REFUSED
                                         : fc::FAILURE_CAUSE_PROXY_UNREACHABLE;
        what = absl::StrCat("connecting to the proxy failed: ",
                            os_errno != 0 ? std::strerror(static_cast<int>(os_errno)) : "");
        break;
      case CURLE_OPERATION_TIMEDOUT: {
        // libcurl counts the CONNECT exchange as part of connecting; a local port says that
        // the TCP connection to the proxy itself was up.
        long local_port = 0;
        curl_easy_getinfo(curl, CURLINFO_LOCAL_PORT, &local_port);
        cause = fc::FAILURE_CAUSE_PROXY_UNREACHABLE;
        what = local_port > 0 ? absl::StrCat("the proxy did not answer CONNECT ", target)
                              : "connecting to the proxy timed out";
        break;
      }
      case CURLE_GOT_NOTHING:
      case CURLE_RECV_ERROR:
      case CURLE_SEND_ERROR:
        cause = fc::FAILURE_CAUSE_PROXY_UNREACHABLE;
        what = absl::StrCat("the proxy closed the connection without answering CONNECT ",
                            target);
        break;
      case CURLE_PEER_FAILED_VERIFICATION:
        if (!IsHttpsProxy(proxy)) break;
        cause = HostNameMismatch(curl, nullptr, /*of_proxy=*/true)
                    ? fc::FAILURE_CAUSE_CERTIFICATE_NAME_MISMATCH
                    : fc::FAILURE_CAUSE_UNTRUSTED_CERTIFICATE_CHAIN;
        what = "TLS to the proxy: its certificate did not verify";
        if (cause == fc::FAILURE_CAUSE_UNTRUSTED_CERTIFICATE_CHAIN) {
          fix = UntrustedChainFix("proxy.trust_store");
        }
        break;
      case CURLE_SSL_CONNECT_ERROR:
      case CURLE_SSL_CERTPROBLEM:
      case CURLE_SSL_CIPHER:
      case CURLE_SSL_CACERT_BADFILE:
        if (!IsHttpsProxy(proxy)) break;
        cause = fc::FAILURE_CAUSE_TLS_HANDSHAKE_FAILED;
        what = "TLS to the proxy failed (is it really an https:// proxy?)";
        break;
      default:
        break;
    }
  }
  if (cause == fc::FAILURE_CAUSE_UNSPECIFIED) return absl::nullopt;
  Diagnosis diagnosis = MakeDiagnosis(
      cause, absl::StrCat("proxy ", proxy.url, " (for ", target, "): ", what,
                          error_text.empty() ? "" : absl::StrCat(" (", error_text, ")")));
  if (!fix.empty()) diagnosis.set_fix(fix);
  if (connect_code != 0) diagnosis.add_codes(absl::StrCat("PROXY ", connect_code));
  return diagnosis;
}

absl::StatusOr<std::string> ProbeProxyTunnel(const ProxyConfig& proxy, const std::string& host,
                                             int port, absl::Duration timeout) {
  const std::string target = absl::StrCat(HostForUrl(host), ":", port);
  std::unique_ptr<CURL, CurlDeleter> handle(curl_easy_init());
  if (handle == nullptr) return absl::InternalError("curl_easy_init failed");
  CURL* curl = handle.get();
  char error[CURL_ERROR_SIZE] = {0};
  // An http:// URL with CONNECT_ONLY: libcurl connects to the proxy, has it open the tunnel,
  // and stops there; nothing is sent through the tunnel.
  const std::string url = absl::StrCat("http://", target, "/");
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http");
  curl_easy_setopt(curl, CURLOPT_CONNECT_ONLY, 1L);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(absl::ToInt64Milliseconds(timeout)));
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS,
                   static_cast<long>(absl::ToInt64Milliseconds(timeout)));
  if (!ApplyProxy(curl, proxy, host)) {
    return absl::StrCat(target, ": direct (settings.proxy.no_proxy)");
  }
  const CURLcode code = curl_easy_perform(curl);
  long connect_code = 0;
  curl_easy_getinfo(curl, CURLINFO_HTTP_CONNECTCODE, &connect_code);
  if (code == CURLE_OK) {
    return absl::StrCat("CONNECT ", target, ": ", connect_code);
  }
  const std::string error_text = error[0] != '\0' ? error : curl_easy_strerror(code);
  Diagnosis diagnosis =
      DiagnoseProxyFailure(curl, code, proxy, target, error_text)
          .value_or(MakeDiagnosis(fc::FAILURE_CAUSE_UNKNOWN,
                                  absl::StrCat("proxy ", proxy.url, ", CONNECT ", target, ": ",
                                               error_text)));
  diagnosis.set_endpoint(target);
  diagnosis.add_codes(absl::StrCat("CURLE_", static_cast<int>(code)));
  return DiagnosedError(diagnosis, absl::StrCat("CONNECT ", target, " through ", proxy.url));
}

}  // namespace mailroom
