#include "common/rpc/http_transport.h"

#include <curl/curl.h>

#include <regex>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/cord.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace mailroom {
namespace {

constexpr char kTransportFailureUrl[] = "type.mailroom/transport-failure";

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

TransportFailure FailureOf(CURLcode code) {
  switch (code) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
      return TransportFailure::kDns;
    case CURLE_COULDNT_CONNECT:
      return TransportFailure::kConnectRefused;
    case CURLE_OPERATION_TIMEDOUT:
      return TransportFailure::kTimeout;
    case CURLE_PEER_FAILED_VERIFICATION:
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

absl::StatusOr<HttpResponse> CurlHttpTransport::PostForm(const HttpRequest& request) {
  // Checked here, where the request leaves, not only where settings are saved: a token
  // request (a client secret in its body) goes over TLS unless the endpoint is this host.
  if (!absl::StartsWith(request.url, "https://") && !IsLoopbackHttpUrl(request.url)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "refusing to send to ", request.url,
        ": only https:// is allowed (plain http:// only to a loopback address, for tests)"));
  }
  CURL* curl = curl_easy_init();
  if (curl == nullptr) return absl::InternalError("curl_easy_init failed");
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
  curl_easy_setopt(curl, CURLOPT_PROXY, options_.proxy.c_str());
  if (!options_.ca_pem.empty()) {
    curl_blob blob{const_cast<char*>(options_.ca_pem.data()), options_.ca_pem.size(),
                   CURL_BLOB_COPY};
    curl_easy_setopt(curl, CURLOPT_CAINFO_BLOB, &blob);
  } else if (!options_.ca_file.empty()) {
    curl_easy_setopt(curl, CURLOPT_CAINFO, options_.ca_file.c_str());
  }
  const CURLcode code = curl_easy_perform(curl);
  long status = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);
  if (code != CURLE_OK) {
    const std::string detail = error[0] != '\0' ? error : curl_easy_strerror(code);
    const TransportFailure failure = FailureOf(code);
    absl::Status status_out =
        failure == TransportFailure::kTimeout
            ? absl::DeadlineExceededError(absl::StrCat("POST ", request.url, ": ", detail))
            : absl::UnavailableError(absl::StrCat("POST ", request.url, ": ", detail));
    return WithTransportFailure(std::move(status_out), failure);
  }
  response.status = static_cast<int>(status);
  return response;
}

}  // namespace mailroom
