// EntraTokenClient over a fake transport: the request it sends, the token it returns, and
// the classification of every failure, from response bodies recorded in Entra ID's shape.
#include "pan/broker/token_client.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "tests/testing/capturing_log_sink.h"
#include "tests/testing/fake_clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/fake_http_transport.h"

namespace mailroom::broker {
namespace {

namespace fc = ::mailroom::common::v1;
using ::mailroom::testing::FakeHttpTransport;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kEndpoint[] =
    "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token";
constexpr char kSecret[] = "Qm8~Sx.client-SECRET_value+/=";

// An Entra ID error body as the v2 endpoint sends it (trace ids shortened).
std::string EntraError(const std::string& error, int64_t code, const std::string& text) {
  return absl::StrCat(R"({"error":")", error, R"(","error_description":"AADSTS)", code, ": ",
                      text,
                      R"(\r\nTrace ID: 0d1f2a3b-0000-4000-8000-000000000001\r\nCorrelation ID: )"
                      R"(5c6d7e8f-0000-4000-8000-000000000002\r\nTimestamp: 2026-11-29 10:00:00Z",)"
                      R"("error_codes":[)",
                      code,
                      R"(],"timestamp":"2026-11-29 10:00:00Z",)"
                      R"("trace_id":"0d1f2a3b-0000-4000-8000-000000000001",)"
                      R"("correlation_id":"5c6d7e8f-0000-4000-8000-000000000002",)"
                      R"("error_uri":"https://login.microsoftonline.com/error?code=)",
                      code, R"("})");
}

class TokenClientTest : public ::testing::Test {
 protected:
  std::unique_ptr<EntraTokenClient> MakeClient(bool certificate = false) {
    std::unique_ptr<ClientCredential> credential;
    if (certificate) {
      credential = std::make_unique<CertificateAssertion>(
          [](absl::Time now) -> absl::StatusOr<std::string> {
            return absl::StrCat("eyJhbGciOiJQUzI1NiJ9.eyJpYXQiOj", absl::ToUnixSeconds(now),
                                "fQ.c2ln");
          });
    } else {
      credential = std::make_unique<ClientSecret>(kSecret);
    }
    return std::make_unique<EntraTokenClient>(
        TokenEndpointConfig{kEndpoint, "11111111-2222-3333-4444-555555555555",
                            "https://outlook.office365.com/.default", absl::Seconds(60)},
        std::move(credential), &transport_, &clock_);
  }

  Diagnosis FetchFailure(bool certificate = false) {
    absl::StatusOr<AccessToken> token = MakeClient(certificate)->Fetch();
    EXPECT_FALSE(token.ok());
    absl::optional<Diagnosis> diagnosis = DiagnosisOf(token.status());
    EXPECT_TRUE(diagnosis.has_value()) << token.status();
    return diagnosis.value_or(Diagnosis());
  }

  FakeClock clock_{absl::FromUnixSeconds(1800000000)};
  FakeHttpTransport transport_;
};

TEST_F(TokenClientTest, SendsClientCredentialsGrant) {
  transport_.EnqueueJson(
      200, R"({"token_type":"Bearer","expires_in":3599,"ext_expires_in":3599,"access_token":"tok"})");
  ASSERT_TRUE(MakeClient()->Fetch().ok());
  ASSERT_EQ(transport_.request_count(), 1);
  const HttpRequest request = transport_.requests()[0];
  EXPECT_EQ(request.url, kEndpoint);
  EXPECT_EQ(request.timeout, absl::Seconds(60));
  const std::vector<std::string> fields = absl::StrSplit(request.form_body, '&');
  EXPECT_THAT(fields, ::testing::UnorderedElementsAre(
                          "grant_type=client_credentials",
                          "client_id=11111111-2222-3333-4444-555555555555",
                          "scope=https%3A%2F%2Foutlook.office365.com%2F.default",
                          "client_secret=Qm8~Sx.client-SECRET_value%2B%2F%3D"));
}

TEST_F(TokenClientTest, CertificateCredentialSendsAssertionNotSecret) {
  transport_.EnqueueJson(200, R"({"token_type":"Bearer","expires_in":3599,"access_token":"t"})");
  ASSERT_TRUE(MakeClient(/*certificate=*/true)->Fetch().ok());
  const std::string body = transport_.requests()[0].form_body;
  EXPECT_THAT(body, HasSubstr("client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-"
                              "assertion-type%3Ajwt-bearer"));
  EXPECT_THAT(body, HasSubstr("client_assertion=eyJhbGciOiJQUzI1NiJ9.eyJpYXQiOj1800000000fQ.c2ln"));
  EXPECT_THAT(body, Not(HasSubstr("client_secret")));
}

TEST_F(TokenClientTest, ParsesTokenAndTimes) {
  transport_.EnqueueJson(
      200,
      R"({"token_type":"Bearer","expires_in":"4999","refresh_in":2499,"access_token":"abc.def"})");
  absl::StatusOr<AccessToken> token = MakeClient()->Fetch();
  ASSERT_TRUE(token.ok()) << token.status();
  EXPECT_EQ(token->value, "abc.def");
  EXPECT_EQ(token->issue_time, clock_.Now());
  EXPECT_EQ(token->expire_time, clock_.Now() + absl::Seconds(4999));
  EXPECT_EQ(token->refresh_hint, clock_.Now() + absl::Seconds(2499));
  EXPECT_EQ(token->fingerprint, TokenFingerprint("abc.def"));
  EXPECT_EQ(token->fingerprint.size(), 64u);
}

// The broker logs a token it caches by its fingerprint: the SHA-256 of the token in hex, never
// the token itself (nor a part of it).
TEST_F(TokenClientTest, CachedTokenIsLoggedByItsSha256Only) {
  constexpr char kToken[] = "eyJ0eXAiOiJKV1Qi.opaque-token_value";
  // sha256("eyJ0eXAiOiJKV1Qi.opaque-token_value"), computed independently (Python hashlib).
  constexpr char kSha256[] = "4826769297e2d4abefb45f0eacdaee3675f461a72aaf0f9de495af3da819304c";
  EXPECT_EQ(TokenFingerprint(kToken), kSha256);

  ::mailroom::testing::ScopedLogCapture capture;
  transport_.EnqueueJson(200, absl::StrCat(R"({"token_type":"Bearer","expires_in":3599,)",
                                           R"("access_token":")", kToken, R"("})"));
  absl::StatusOr<AccessToken> token = MakeClient()->Fetch();
  ASSERT_TRUE(token.ok()) << token.status();
  EXPECT_EQ(token->fingerprint, kSha256);
  const std::string log = capture.sink().Text();
  EXPECT_THAT(log, HasSubstr(absl::StrCat("Putting value in OAuth cache (token ", kSha256, ",")));
  EXPECT_THAT(log, Not(HasSubstr("opaque-token")));
  EXPECT_THAT(log, Not(HasSubstr("eyJ0eXAiOiJKV1Qi")));
}

TEST_F(TokenClientTest, TokenEndpointIsDerivedFromAuthorityAndTenant) {
  EXPECT_EQ(TokenEndpointFor("https://login.microsoftonline.com/", "contoso.onmicrosoft.com"),
            kEndpoint);
  EXPECT_EQ(TokenEndpointFor("https://login.microsoftonline.us", "t1"),
            "https://login.microsoftonline.us/t1/oauth2/v2.0/token");
}

struct AadstsCase {
  int64_t code;
  const char* error;
  int http_status;
  FailureCause cause;
  const char* title;
};

TEST_F(TokenClientTest, EveryAadstsCodeIsNamed) {
  const AadstsCase cases[] = {
      {90002, "invalid_request", 400, fc::FAILURE_CAUSE_INVALID_TENANT,
       "Invalid OAuth endpoint or tenant identifier"},
      {900023, "invalid_request", 400, fc::FAILURE_CAUSE_INVALID_TENANT,
       "Invalid OAuth endpoint or tenant identifier"},
      {700016, "unauthorized_client", 400, fc::FAILURE_CAUSE_UNKNOWN_CLIENT, "Invalid client ID"},
      {7000215, "invalid_client", 401, fc::FAILURE_CAUSE_INVALID_CLIENT_SECRET,
       "Invalid client secret"},
      {7000222, "invalid_client", 401, fc::FAILURE_CAUSE_CLIENT_SECRET_EXPIRED,
       "Client secret expired"},
      {7000218, "invalid_client", 401, fc::FAILURE_CAUSE_MISSING_CREDENTIAL,
       "No client credential configured"},
      {70011, "invalid_scope", 400, fc::FAILURE_CAUSE_INVALID_SCOPE, "Invalid scope"},
      {700022, "invalid_scope", 400, fc::FAILURE_CAUSE_INVALID_SCOPE, "Invalid scope"},
      {65001, "invalid_grant", 400, fc::FAILURE_CAUSE_MISSING_CONSENT, "Admin consent missing"},
      {90094, "invalid_grant", 400, fc::FAILURE_CAUSE_MISSING_CONSENT, "Admin consent missing"},
      {500011, "invalid_resource", 400, fc::FAILURE_CAUSE_RESOURCE_PRINCIPAL_MISSING,
       "Exchange Online not found in the tenant"},
      {700027, "invalid_client", 401, fc::FAILURE_CAUSE_CERTIFICATE_ASSERTION_REJECTED,
       "Certificate credential rejected"},
      {50012, "invalid_client", 401, fc::FAILURE_CAUSE_CERTIFICATE_ASSERTION_REJECTED,
       "Certificate credential rejected"},
      {500133, "invalid_grant", 400, fc::FAILURE_CAUSE_CERTIFICATE_ASSERTION_REJECTED,
       "Certificate credential rejected"},
      {53003, "invalid_grant", 400, fc::FAILURE_CAUSE_CONDITIONAL_ACCESS_BLOCKED,
       "Blocked by Conditional Access"},
      {530035, "invalid_grant", 400, fc::FAILURE_CAUSE_CONDITIONAL_ACCESS_BLOCKED,
       "Blocked by Conditional Access"},
      {90033, "temporarily_unavailable", 503, fc::FAILURE_CAUSE_TOKEN_ENDPOINT_UNAVAILABLE,
       "Token endpoint unavailable"},
  };
  for (const AadstsCase& c : cases) {
    SCOPED_TRACE(c.code);
    transport_.EnqueueJson(c.http_status, EntraError(c.error, c.code, "recorded description"));
    const Diagnosis diagnosis = FetchFailure();
    EXPECT_EQ(diagnosis.cause(), c.cause);
    EXPECT_EQ(diagnosis.title(), c.title);
    EXPECT_FALSE(diagnosis.fix().empty());
    EXPECT_EQ(diagnosis.http_status(), c.http_status);
    EXPECT_THAT(diagnosis.codes(), ::testing::Contains(absl::StrCat("AADSTS", c.code)));
    EXPECT_EQ(diagnosis.trace_id(), "0d1f2a3b-0000-4000-8000-000000000001");
    EXPECT_EQ(diagnosis.endpoint(), kEndpoint);
    // The server's reply is kept beside the classification.
    EXPECT_THAT(diagnosis.raw_reply(), HasSubstr("recorded description"));
  }
}

TEST_F(TokenClientTest, ClassifiesOnCodesNotDescriptionText) {
  // A description that mentions another failure must not change the classification.
  transport_.EnqueueJson(401, EntraError("invalid_client", 7000222,
                                         "Invalid client secret provided (AADSTS7000215)"));
  EXPECT_EQ(FetchFailure().cause(), fc::FAILURE_CAUSE_CLIENT_SECRET_EXPIRED);
}

TEST_F(TokenClientTest, PlainOAuthInvalidClientDependsOnCredentialKind) {
  const char* body = R"({"error":"invalid_client","error_description":"client authentication failed"})";
  transport_.EnqueueJson(401, body);
  EXPECT_EQ(FetchFailure().cause(), fc::FAILURE_CAUSE_INVALID_CLIENT_SECRET);
  transport_.EnqueueJson(401, body);
  EXPECT_EQ(FetchFailure(/*certificate=*/true).cause(),
            fc::FAILURE_CAUSE_CERTIFICATE_ASSERTION_REJECTED);
}

TEST_F(TokenClientTest, ThrottlingCarriesRetryAfter) {
  transport_.EnqueueJson(429, R"({"error":"temporarily_unavailable"})", "120");
  const Diagnosis diagnosis = FetchFailure();
  EXPECT_EQ(diagnosis.cause(), fc::FAILURE_CAUSE_TOKEN_ENDPOINT_THROTTLED);
  EXPECT_TRUE(diagnosis.retryable());
  EXPECT_EQ(diagnosis.retry_after().seconds(), 120);
}

// L6: a server's Retry-After is capped at ten minutes.
TEST_F(TokenClientTest, AHugeRetryAfterIsCapped) {
  transport_.EnqueueJson(429, R"({"error":"temporarily_unavailable"})", "4611686018427387904");
  EXPECT_EQ(FetchFailure().retry_after().seconds(), 600);
}

// Entra may send Retry-After as an HTTP-date (RFC 9110); it used to be read as "absent".
TEST_F(TokenClientTest, AnHttpDateRetryAfterIsReadFromTheClock) {
  const std::string in_90s =
      absl::FormatTime("%a, %d %b %Y %H:%M:%S GMT", clock_.Now() + absl::Seconds(90),
                       absl::UTCTimeZone());
  transport_.EnqueueJson(429, R"({"error":"temporarily_unavailable"})", in_90s);
  EXPECT_EQ(FetchFailure().retry_after().seconds(), 90);
}

TEST_F(TokenClientTest, ThrottlingWithoutRetryAfterWaitsAMinute) {
  transport_.EnqueueJson(429, "");
  EXPECT_EQ(FetchFailure().retry_after().seconds(), 60);
}

TEST_F(TokenClientTest, ServerErrorsAreRetryable) {
  transport_.EnqueueJson(503, "<html>Service Unavailable</html>");
  const Diagnosis diagnosis = FetchFailure();
  EXPECT_EQ(diagnosis.cause(), fc::FAILURE_CAUSE_TOKEN_ENDPOINT_UNAVAILABLE);
  EXPECT_TRUE(diagnosis.retryable());
}

TEST_F(TokenClientTest, UnknownPathMeansWrongTenant) {
  transport_.EnqueueJson(404, R"({"error":"invalid_request","error_description":"unrecognized route"})");
  EXPECT_EQ(FetchFailure().cause(), fc::FAILURE_CAUSE_INVALID_TENANT);
}

TEST_F(TokenClientTest, SuccessWithoutTokenIsInvalidResponse) {
  transport_.EnqueueJson(200, R"({"token_type":"Bearer","expires_in":3599})");
  EXPECT_EQ(FetchFailure().cause(), fc::FAILURE_CAUSE_TOKEN_RESPONSE_INVALID);
  transport_.EnqueueJson(200, "<html>proxy login page</html>");
  EXPECT_EQ(FetchFailure().cause(), fc::FAILURE_CAUSE_TOKEN_RESPONSE_INVALID);
  transport_.EnqueueJson(200, R"({"token_type":"mac","expires_in":3599,"access_token":"x"})");
  EXPECT_EQ(FetchFailure().cause(), fc::FAILURE_CAUSE_TOKEN_RESPONSE_INVALID);
}

TEST_F(TokenClientTest, TransportFailuresAreNamed) {
  struct Case {
    TransportFailure failure;
    FailureCause cause;
    std::string title;  // the seed's words for a connect failure, naming the host
  };
  const Case cases[] = {
      {TransportFailure::kTimeout, fc::FAILURE_CAUSE_CONNECT_TIMEOUT,
       "Connection to login.microsoftonline.com failed: connect timed out"},
      {TransportFailure::kDns, fc::FAILURE_CAUSE_DNS_RESOLUTION_FAILED,
       "Connection to login.microsoftonline.com failed: host name not found"},
      {TransportFailure::kConnectRefused, fc::FAILURE_CAUSE_CONNECTION_REFUSED,
       "Connection to login.microsoftonline.com failed: connection refused"},
      {TransportFailure::kTlsUntrusted, fc::FAILURE_CAUSE_UNTRUSTED_CERTIFICATE_CHAIN,
       "PKIX path building failed: unable to find valid certification path to requested "
       "target"},
      {TransportFailure::kTlsHandshake, fc::FAILURE_CAUSE_TLS_HANDSHAKE_FAILED,
       "TLS handshake failed"},
  };
  for (const auto& [failure, cause, title] : cases) {
    SCOPED_TRACE(static_cast<int>(failure));
    transport_.Enqueue(WithTransportFailure(absl::UnavailableError("curl said no"), failure));
    const Diagnosis diagnosis = FetchFailure();
    EXPECT_EQ(diagnosis.cause(), cause);
    EXPECT_EQ(diagnosis.title(), title);
    EXPECT_TRUE(diagnosis.retryable());
    EXPECT_THAT(diagnosis.raw_reply(), HasSubstr("curl said no"));
  }
}

TEST_F(TokenClientTest, SecretNeverAppearsInDiagnosisOrStatus) {
  // Even an endpoint that echoes the request back must not leak the secret.
  transport_.EnqueueJson(400, absl::StrCat(R"({"error":"invalid_request","error_description":")",
                                           "client_secret=", kSecret, R"("})"));
  absl::StatusOr<AccessToken> token = MakeClient()->Fetch();
  ASSERT_FALSE(token.ok());
  EXPECT_THAT(std::string(token.status().message()), Not(HasSubstr("client-SECRET")));
  EXPECT_THAT(DiagnosisOf(token.status())->raw_reply(), Not(HasSubstr("client-SECRET")));
}

}  // namespace
}  // namespace mailroom::broker
