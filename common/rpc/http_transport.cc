#include "common/rpc/http_transport.h"

#include <curl/curl.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <regex>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/cord.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/base/diagnosis.h"

namespace mailroom {
namespace {

constexpr char kTransportFailureUrl[] = "type.mailroom/transport-failure";
constexpr char kPresentedChainUrl[] = "type.mailroom/presented-chain";
// Separators of the presented-chain payload: between certificates, and between the fields of one.
constexpr char kCertificateSeparator = '\x1e';
constexpr char kFieldSeparator = '\x1f';

struct CurlDeleter {
  void operator()(CURL* curl) const { curl_easy_cleanup(curl); }
};
using CurlPtr = std::unique_ptr<CURL, CurlDeleter>;

void EnsureCurlInitialized() {
  static const bool initialized = [] {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    return true;
  }();
  (void)initialized;
}

size_t AppendBody(char* data, size_t size, size_t count, void* out) {
  static_cast<std::string*>(out)->append(data, size * count);
  return size * count;
}

size_t ReadHeader(char* data, size_t size, size_t count, void* out) {
  auto* response = static_cast<HttpResponse*>(out);
  absl::string_view line(data, size * count);
  const size_t colon = line.find(':');
  if (colon != absl::string_view::npos) {
    const std::string name = absl::AsciiStrToLower(line.substr(0, colon));
    const std::string value(absl::StripAsciiWhitespace(line.substr(colon + 1)));
    if (name == "retry-after") response->retry_after = value;
    if (name == "content-type") response->content_type = value;
  }
  return size * count;
}

TransportFailure FailureOf(CURLcode code, CURL* curl) {
  switch (code) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
      return TransportFailure::kDns;
    case CURLE_COULDNT_CONNECT:
      return TransportFailure::kConnectRefused;
    case CURLE_OPERATION_TIMEDOUT:
      return TransportFailure::kTimeout;
    case CURLE_PEER_FAILED_VERIFICATION:
      return HostNameMismatch(curl) ? TransportFailure::kTlsNameMismatch
                                    : TransportFailure::kTlsUntrusted;
    case CURLE_SSL_CACERT_BADFILE:
      return TransportFailure::kTlsUntrusted;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
      return TransportFailure::kTlsHandshake;
    default:
      return TransportFailure::kOther;
  }
}

}  // namespace

TransportFailure TransportFailureOf(const absl::Status& status) {
  absl::optional<absl::Cord> payload = status.GetPayload(kTransportFailureUrl);
  if (!payload.has_value()) return TransportFailure::kNone;
  int value = 0;
  if (!absl::SimpleAtoi(std::string(*payload), &value)) return TransportFailure::kOther;
  return static_cast<TransportFailure>(value);
}

absl::Status WithTransportFailure(absl::Status status, TransportFailure failure) {
  status.SetPayload(kTransportFailureUrl, absl::Cord(absl::StrCat(static_cast<int>(failure))));
  return status;
}

Diagnosis DiagnoseTransportFailure(const absl::Status& status) {
  namespace fc = ::mailroom::common::v1;
  if (absl::optional<Diagnosis> at_proxy = DiagnosisOf(status); at_proxy.has_value()) {
    return *at_proxy;
  }
  FailureCause cause;
  switch (TransportFailureOf(status)) {
    case TransportFailure::kTimeout: cause = fc::FAILURE_CAUSE_CONNECT_TIMEOUT; break;
    case TransportFailure::kDns: cause = fc::FAILURE_CAUSE_DNS_RESOLUTION_FAILED; break;
    case TransportFailure::kConnectRefused: cause = fc::FAILURE_CAUSE_CONNECTION_REFUSED; break;
    case TransportFailure::kTlsUntrusted: cause = fc::FAILURE_CAUSE_UNTRUSTED_CERTIFICATE_CHAIN; break;
    case TransportFailure::kTlsNameMismatch: cause = fc::FAILURE_CAUSE_CERTIFICATE_NAME_MISMATCH; break;
    case TransportFailure::kTlsHandshake: cause = fc::FAILURE_CAUSE_TLS_HANDSHAKE_FAILED; break;
    default: cause = fc::FAILURE_CAUSE_CONNECTION_LOST; break;
  }
  // The message carries the chain the server presented, if it did not verify.
  return MakeDiagnosis(cause, status.message());
}

std::vector<CertificateSummary> PresentedChainOf(const absl::Status& status) {
  std::vector<CertificateSummary> chain;
  absl::optional<absl::Cord> payload = status.GetPayload(kPresentedChainUrl);
  if (!payload.has_value()) return chain;
  for (absl::string_view encoded :
       absl::StrSplit(std::string(*payload), kCertificateSeparator, absl::SkipEmpty())) {
    std::vector<std::string> fields = absl::StrSplit(encoded, kFieldSeparator);
    fields.resize(6);
    chain.push_back(CertificateSummary{fields[0], fields[1], fields[2], fields[3], fields[4],
                                       fields[5]});
  }
  return chain;
}

absl::Status WithPresentedChain(absl::Status status, const std::vector<CertificateSummary>& chain) {
  std::string encoded;
  for (const CertificateSummary& c : chain) {
    absl::StrAppend(&encoded, c.subject, std::string(1, kFieldSeparator), c.issuer,
                    std::string(1, kFieldSeparator), c.not_before, std::string(1, kFieldSeparator),
                    c.not_after, std::string(1, kFieldSeparator), c.subject_alt_names,
                    std::string(1, kFieldSeparator), c.pem, std::string(1, kCertificateSeparator));
  }
  if (!encoded.empty()) status.SetPayload(kPresentedChainUrl, absl::Cord(encoded));
  return status;
}

namespace {

// A dotted quad in 127.0.0.0/8 with every part 0..255 ("127.0.0.300" is not an address).
bool IsLoopbackIpv4(absl::string_view name) {
  std::vector<absl::string_view> parts = absl::StrSplit(name, '.');
  if (parts.size() != 4 || parts[0] != "127") return false;
  for (absl::string_view part : parts) {
    int value = 0;
    if (part.empty() || part.size() > 3 || !absl::SimpleAtoi(part, &value) || value > 255 ||
        !absl::ascii_isdigit(static_cast<unsigned char>(part[0]))) {
      return false;
    }
  }
  return true;
}

}  // namespace

bool IsLoopbackHttpUrl(absl::string_view url) {
  if (!absl::ConsumePrefix(&url, "http://")) return false;
  absl::string_view host = url.substr(0, url.find_first_of("/?#"));
  if (absl::StartsWith(host, "[::1]")) {
    host.remove_prefix(5);
  } else {
    absl::string_view name = host.substr(0, host.rfind(':'));
    if (host.find(':') == absl::string_view::npos) name = host;
    if (name != "localhost" && !IsLoopbackIpv4(name)) return false;
    host.remove_prefix(name.size());
  }
  // What may follow the host: nothing, or ":<port>".
  int port;
  return host.empty() || (absl::ConsumePrefix(&host, ":") && absl::SimpleAtoi(host, &port));
}

CurlHttpTransport::CurlHttpTransport(Options options) : options_(std::move(options)) {
  EnsureCurlInitialized();
}

namespace {

// Host and port of `url` ("host:port", the port defaulted by the scheme), for the proxy.
struct UrlParts {
  std::string host;
  std::string target;
};

UrlParts PartsOf(const std::string& url) {
  UrlParts parts;
  int port = 0;
  if (HostAndPortOfUrl(url, &parts.host, &port)) {
    parts.target = absl::StrCat(HostForUrl(parts.host), ":", port);
  }
  return parts;
}

// The chain an HTTPS server presents, over a connection that verifies nothing and therefore
// sends nothing: CONNECT_ONLY stops after the TLS handshake (through the same proxy).
std::vector<CertificateSummary> FetchPresentedChain(const std::string& url,
                                                    const ProxyConfig& proxy,
                                                    const std::string& host,
                                                    absl::Duration timeout) {
  CurlPtr curl(curl_easy_init());
  if (curl == nullptr) return {};
  curl_easy_setopt(curl.get(), CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl.get(), CURLOPT_PROTOCOLS_STR, "https");
  curl_easy_setopt(curl.get(), CURLOPT_CONNECT_ONLY, 1L);
  curl_easy_setopt(curl.get(), CURLOPT_SSL_VERIFYPEER, 0L);
  curl_easy_setopt(curl.get(), CURLOPT_SSL_VERIFYHOST, 0L);
  curl_easy_setopt(curl.get(), CURLOPT_CERTINFO, 1L);
  curl_easy_setopt(curl.get(), CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl.get(), CURLOPT_TIMEOUT_MS,
                   static_cast<long>(absl::ToInt64Milliseconds(timeout)));
  ApplyProxy(curl.get(), proxy, host);
  if (curl_easy_perform(curl.get()) != CURLE_OK) return {};
  return CertificatesOf(curl.get());
}

}  // namespace

absl::StatusOr<HttpResponse> CurlHttpTransport::PostForm(const HttpRequest& request) {
  // Checked here, where the request leaves, not only where settings are saved: a token
  // request (a client secret in its body) goes over TLS unless the endpoint is this host.
  if (!absl::StartsWith(request.url, "https://") && !IsLoopbackHttpUrl(request.url)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "refusing to send to ", request.url,
        ": only https:// is allowed (plain http:// only to a loopback address, for tests)"));
  }
  CurlPtr handle(curl_easy_init());
  if (handle == nullptr) return absl::InternalError("curl_easy_init failed");
  CURL* curl = handle.get();
  HttpResponse response;
  char error[CURL_ERROR_SIZE] = {0};
  curl_slist* headers = curl_slist_append(nullptr, "Accept: application/json");
  for (const auto& [name, value] : request.headers) {
    headers = curl_slist_append(headers, absl::StrCat(name, ": ", value).c_str());
  }
  curl_easy_setopt(curl, CURLOPT_URL, request.url.c_str());
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl, CURLOPT_POST, 1L);
  curl_easy_setopt(curl, CURLOPT_POSTFIELDS, request.form_body.c_str());
  curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, static_cast<long>(request.form_body.size()));
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS,
                   static_cast<long>(absl::ToInt64Milliseconds(request.timeout)));
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(absl::ToInt64Milliseconds(request.timeout)));
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, AppendBody);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &response.body);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, ReadHeader);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &response);
  // Only the server's own headers: the proxy's answer to CONNECT is not the response.
  curl_easy_setopt(curl, CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L);
  const UrlParts parts = PartsOf(request.url);
  const bool via_proxy = ApplyProxy(curl, options_.proxy, parts.host);
  if (!options_.ca_pem.empty()) {
    curl_blob blob{const_cast<char*>(options_.ca_pem.data()), options_.ca_pem.size(),
                   CURL_BLOB_COPY};
    curl_easy_setopt(curl, CURLOPT_CAINFO_BLOB, &blob);
  } else if (!options_.ca_file.empty()) {
    curl_easy_setopt(curl, CURLOPT_CAINFO, options_.ca_file.c_str());
  }
  if (!options_.client_cert_file.empty()) {
    curl_easy_setopt(curl, CURLOPT_SSLCERT, options_.client_cert_file.c_str());
    curl_easy_setopt(curl, CURLOPT_SSLKEY, options_.client_key_file.c_str());
  }
  const CURLcode code = curl_easy_perform(curl);
  curl_slist_free_all(headers);
  if (code == CURLE_OK) {
    long status = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    response.status = static_cast<int>(status);
    return response;
  }
  std::string detail = error[0] != '\0' ? error : curl_easy_strerror(code);
  const absl::optional<Diagnosis> at_proxy =
      via_proxy ? DiagnoseProxyFailure(curl, code, options_.proxy, parts.target, detail)
                : absl::nullopt;
  const TransportFailure failure = at_proxy.has_value() ? TransportFailure::kProxy
                                                        : FailureOf(code, curl);
  if (via_proxy && !at_proxy.has_value()) {
    absl::StrAppend(&detail, " (through the proxy ", options_.proxy.url, ")");
  }
  std::vector<CertificateSummary> chain;
  if (failure == TransportFailure::kTlsUntrusted) {
    chain = FetchPresentedChain(request.url, options_.proxy, parts.host, request.timeout);
    if (!chain.empty()) absl::StrAppend(&detail, "\n", FormatChain(chain));
  }
  absl::Status status_out =
      failure == TransportFailure::kTimeout
          ? absl::DeadlineExceededError(absl::StrCat("POST ", request.url, ": ", detail))
          : absl::UnavailableError(absl::StrCat("POST ", request.url, ": ", detail));
  if (at_proxy.has_value()) status_out = WithDiagnosis(std::move(status_out), *at_proxy);
  return WithPresentedChain(WithTransportFailure(std::move(status_out), failure), chain);
}

absl::optional<absl::Duration> ParseRetryAfter(absl::string_view header, absl::Time now,
                                               absl::Duration max) {
  header = absl::StripAsciiWhitespace(header);
  if (header.empty()) return absl::nullopt;
  int64_t seconds = 0;
  if (absl::SimpleAtoi(header, &seconds)) {
    if (seconds < 0) return absl::nullopt;
    return std::min(absl::Seconds(seconds), max);
  }
  absl::Time when;
  std::string error;
  if (!absl::ParseTime("%a, %d %b %Y %H:%M:%S GMT", std::string(header), absl::UTCTimeZone(),
                       &when, &error)) {
    return absl::nullopt;
  }
  return std::clamp(when - now, absl::ZeroDuration(), max);
}

}  // namespace mailroom
