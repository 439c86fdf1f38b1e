#include "pan/broker/token_client.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "common/base/logging.h"
#include "common/base/redactor.h"
#include "common/base/url_encode.h"
#include "common/rpc/http_transport.h"
#include "google/protobuf/duration.pb.h"
#include "pan/broker/token_response.h"
#include "proto/mailroom/broker/internal/entra_token_response.pb.h"

namespace mailroom::broker {
namespace {

namespace fc = ::mailroom::common::v1;
using ::mailroom::broker::internal::EntraTokenResponse;

constexpr absl::Duration kDefaultRetryAfter = absl::Seconds(60);
constexpr absl::Duration kMaxRetryAfter = absl::Minutes(10);

// AADSTS codes and the cause each selects (../shared/reference/exchange-online.md).
constexpr struct {
  int64_t code;
  FailureCause cause;
} kAadstsCauses[] = {
    {90002, fc::FAILURE_CAUSE_INVALID_TENANT},
    {900023, fc::FAILURE_CAUSE_INVALID_TENANT},
    {700016, fc::FAILURE_CAUSE_UNKNOWN_CLIENT},
    {7000215, fc::FAILURE_CAUSE_INVALID_CLIENT_SECRET},
    {7000222, fc::FAILURE_CAUSE_CLIENT_SECRET_EXPIRED},
    {7000218, fc::FAILURE_CAUSE_MISSING_CREDENTIAL},
    {70011, fc::FAILURE_CAUSE_INVALID_SCOPE},
    {700022, fc::FAILURE_CAUSE_INVALID_SCOPE},
    {65001, fc::FAILURE_CAUSE_MISSING_CONSENT},
    {90094, fc::FAILURE_CAUSE_MISSING_CONSENT},
    {500011, fc::FAILURE_CAUSE_RESOURCE_PRINCIPAL_MISSING},
    {700027, fc::FAILURE_CAUSE_CERTIFICATE_ASSERTION_REJECTED},
    {50012, fc::FAILURE_CAUSE_CERTIFICATE_ASSERTION_REJECTED},
    {500133, fc::FAILURE_CAUSE_CERTIFICATE_ASSERTION_REJECTED},
    {53003, fc::FAILURE_CAUSE_CONDITIONAL_ACCESS_BLOCKED},
    {530035, fc::FAILURE_CAUSE_CONDITIONAL_ACCESS_BLOCKED},
    {90055, fc::FAILURE_CAUSE_TOKEN_ENDPOINT_THROTTLED},
    {90006, fc::FAILURE_CAUSE_TOKEN_ENDPOINT_UNAVAILABLE},
    {90024, fc::FAILURE_CAUSE_TOKEN_ENDPOINT_UNAVAILABLE},
    {90033, fc::FAILURE_CAUSE_TOKEN_ENDPOINT_UNAVAILABLE},
};

// Plain OAuth 2.0 errors (RFC 6749 5.2), for endpoints that send no AADSTS codes.
FailureCause CauseOfOAuthError(absl::string_view error, bool certificate_credential) {
  if (error == "invalid_client") {
    return certificate_credential ? fc::FAILURE_CAUSE_CERTIFICATE_ASSERTION_REJECTED
                                  : fc::FAILURE_CAUSE_INVALID_CLIENT_SECRET;
  }
  if (error == "unauthorized_client") return fc::FAILURE_CAUSE_UNKNOWN_CLIENT;
  if (error == "invalid_scope" || error == "invalid_target") return fc::FAILURE_CAUSE_INVALID_SCOPE;
  if (error == "consent_required") return fc::FAILURE_CAUSE_MISSING_CONSENT;
  if (error == "temporarily_unavailable") return fc::FAILURE_CAUSE_TOKEN_ENDPOINT_UNAVAILABLE;
  return fc::FAILURE_CAUSE_TOKEN_REQUEST_REJECTED;
}

// The host of an http(s) URL ("login.microsoftonline.com"), without user info or port.
absl::string_view UrlHost(absl::string_view url) {
  if (const size_t scheme = url.find("://"); scheme != absl::string_view::npos) {
    url.remove_prefix(scheme + 3);
  }
  url = url.substr(0, url.find_first_of("/?#"));
  if (const size_t at = url.rfind('@'); at != absl::string_view::npos) url.remove_prefix(at + 1);
  if (!url.empty() && url.front() == '[') return url.substr(0, url.find(']') + 1);
  return url.substr(0, url.rfind(':'));
}

}  // namespace

absl::Status ClientSecret::AppendFormFields(
    absl::Time, std::vector<std::pair<std::string, std::string>>* form) {
  if (secret_.empty()) {
    return DiagnosedError(MakeDiagnosis(fc::FAILURE_CAUSE_MISSING_CREDENTIAL), "no client secret");
  }
  form->emplace_back("client_secret", secret_);
  return absl::OkStatus();
}

absl::Status CertificateAssertion::AppendFormFields(
    absl::Time now, std::vector<std::pair<std::string, std::string>>* form) {
  absl::StatusOr<std::string> assertion = signer_(now);
  if (!assertion.ok()) {
    return DiagnosedError(MakeDiagnosis(fc::FAILURE_CAUSE_MISSING_CREDENTIAL),
                          assertion.status().message());
  }
  Redactor::Global().AddShortLivedSecret(*assertion);
  form->emplace_back("client_assertion_type",
                     "urn:ietf:params:oauth:client-assertion-type:jwt-bearer");
  form->emplace_back("client_assertion", *std::move(assertion));
  return absl::OkStatus();
}

std::string TokenEndpointFor(absl::string_view authority_host, absl::string_view tenant_id) {
  return absl::StrCat(absl::StripSuffix(authority_host, "/"), "/", tenant_id,
                      "/oauth2/v2.0/token");
}

Diagnosis ClassifyTransportFailure(const absl::Status& status) {
  Diagnosis diagnosis = DiagnoseTransportFailure(status);
  // A failure at the proxy comes classified (common/rpc/curl_proxy.h).
  if (DiagnosisOf(status).has_value()) return diagnosis;
  if (diagnosis.cause() == fc::FAILURE_CAUSE_UNTRUSTED_CERTIFICATE_CHAIN) {
    diagnosis.set_fix(UntrustedChainFix("authority_trust_store"));
  }
  // A token endpoint that can't be reached now may be reachable later.
  diagnosis.set_retryable(true);
  return diagnosis;
}

Diagnosis ClassifyTokenResponse(const HttpResponse& response, bool certificate_credential,
                                absl::Time now) {
  const absl::optional<EntraTokenResponse> body = ParseTokenResponseBody(response.body);
  FailureCause code_cause = fc::FAILURE_CAUSE_UNSPECIFIED;
  std::vector<std::string> codes;
  if (body.has_value()) {
    for (int64_t code : body->error_codes()) {
      codes.push_back(absl::StrCat("AADSTS", code));
      for (const auto& entry : kAadstsCauses) {
        if (entry.code == code && code_cause == fc::FAILURE_CAUSE_UNSPECIFIED) {
          code_cause = entry.cause;
        }
      }
    }
    if (!body->error().empty()) codes.push_back(body->error());
  }
  FailureCause cause;
  if (response.status == 429) {
    cause = fc::FAILURE_CAUSE_TOKEN_ENDPOINT_THROTTLED;
  } else if (code_cause != fc::FAILURE_CAUSE_UNSPECIFIED) {
    cause = code_cause;
  } else if (response.status >= 200 && response.status < 300) {
    cause = fc::FAILURE_CAUSE_TOKEN_RESPONSE_INVALID;
  } else if (response.status == 404) {
    // No token endpoint at this path: the tenant (or the authority host) is wrong.
    cause = fc::FAILURE_CAUSE_INVALID_TENANT;
  } else if (response.status >= 500) {
    cause = fc::FAILURE_CAUSE_TOKEN_ENDPOINT_UNAVAILABLE;
  } else if (body.has_value() && !body->error().empty()) {
    cause = CauseOfOAuthError(body->error(), certificate_credential);
  } else {
    cause = fc::FAILURE_CAUSE_TOKEN_REQUEST_REJECTED;
  }

  // The body of a token-endpoint error holds no secret, but redact anyway: it is shown.
  Diagnosis diagnosis = MakeDiagnosis(cause, Redactor::RedactPatterns(response.body));
  diagnosis.set_http_status(response.status);
  for (std::string& code : codes) diagnosis.add_codes(std::move(code));
  if (body.has_value()) {
    diagnosis.set_trace_id(body->trace_id());
    diagnosis.set_correlation_id(body->correlation_id());
  }
  if (cause == fc::FAILURE_CAUSE_TOKEN_ENDPOINT_THROTTLED) {
    // Absent or unreadable: wait the usual minute.
    const absl::Duration wait =
        ParseRetryAfter(response.retry_after, now, kMaxRetryAfter).value_or(kDefaultRetryAfter);
    diagnosis.mutable_retry_after()->set_seconds(absl::ToInt64Seconds(wait));
  }
  return diagnosis;
}

EntraTokenClient::EntraTokenClient(TokenEndpointConfig config,
                                   std::unique_ptr<ClientCredential> credential,
                                   HttpTransport* transport, const Clock* clock)
    : config_(std::move(config)),
      credential_(std::move(credential)),
      transport_(transport),
      clock_(clock) {}

absl::StatusOr<AccessToken> EntraTokenClient::Fetch() {
  std::vector<std::pair<std::string, std::string>> form = {
      {"grant_type", "client_credentials"},
      {"client_id", config_.client_id},
      {"scope", config_.scope},
  };
  const absl::Time start = clock_->Now();
  if (absl::Status status = credential_->AppendFormFields(start, &form); !status.ok()) {
    return status;
  }
  HttpRequest request;
  request.url = config_.token_endpoint;
  request.timeout = config_.timeout;
  std::vector<std::string> fields;
  for (const auto& [name, value] : form) {
    fields.push_back(absl::StrCat(UrlEncode(name), "=", UrlEncode(value)));
  }
  request.form_body = absl::StrJoin(fields, "&");

  MR_LOG(kDebug, kLogToken) << "POST " << request.url << " client_id=" << config_.client_id
                            << " scope=" << config_.scope;
  absl::StatusOr<HttpResponse> response = transport_->PostForm(request);
  if (!response.ok()) {
    Diagnosis diagnosis = ClassifyTransportFailure(response.status());
    diagnosis.set_endpoint(config_.token_endpoint);
    NameConnectHost(UrlHost(config_.token_endpoint), &diagnosis);
    MR_LOG(kWarn, kLogToken) << "token request failed: " << diagnosis.title() << " ("
                             << response.status().message() << ")";
    // Test Connection lists the chain the endpoint presented (PresentedChainOf).
    return WithPresentedChain(DiagnosedError(diagnosis, response.status().message()),
                              PresentedChainOf(response.status()));
  }

  const absl::optional<EntraTokenResponse> body =
      response->status == 200 ? ParseTokenResponseBody(response->body) : absl::nullopt;
  absl::optional<AccessToken> token =
      body.has_value() ? AccessTokenFromBody(*body, start) : absl::nullopt;
  if (!token.has_value()) {
    Diagnosis diagnosis =
        ClassifyTokenResponse(*response, credential_->is_certificate(), clock_->Now());
    diagnosis.set_endpoint(config_.token_endpoint);
    MR_LOG(kWarn, kLogToken) << "token endpoint answered " << response->status << ": "
                             << diagnosis.title() << " " << diagnosis.raw_reply();
    return DiagnosedError(diagnosis, absl::StrCat("HTTP ", response->status));
  }
  // Registered before anything else can print it.
  Redactor::Global().AddShortLivedSecret(token->value);
  MR_LOG(kInfo, kLogToken) << "Putting value in OAuth cache (token " << token->fingerprint
                           << ", expires in " << body->expires_in() << " s)";
  return *std::move(token);
}

}  // namespace mailroom::broker
