// Provides TokenClient, the interface for fetching an access token with the OAuth 2.0
// client-credentials grant, and EntraTokenClient, which fetches from an Entra ID v2 token
// endpoint through an injected HttpTransport with a client secret or a signed certificate
// assertion. Every failure comes back as an error carrying a Diagnosis (common/base/diagnosis.h)
// classified from the endpoint's codes (AADSTS error_codes, OAuth `error`, HTTP status,
// transport failure), never from description text. Thread-safe.
#ifndef MAILROOM_PAN_BROKER_TOKEN_CLIENT_H_
#define MAILROOM_PAN_BROKER_TOKEN_CLIENT_H_

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/base/clock.h"
#include "common/base/diagnosis.h"
#include "common/rpc/http_transport.h"
#include "pan/broker/access_token.h"

namespace mailroom::broker {

class TokenClient {
 public:
  virtual ~TokenClient() = default;
  // Fetches a new token. Errors carry a Diagnosis.
  virtual absl::StatusOr<AccessToken> Fetch() = 0;
};

// How the client proves its identity to the token endpoint.
class ClientCredential {
 public:
  virtual ~ClientCredential() = default;
  // Appends the credential's form fields (client_secret, or client_assertion_type and
  // client_assertion) for a request made at `now`.
  virtual absl::Status AppendFormFields(absl::Time now,
                                        std::vector<std::pair<std::string, std::string>>* form) = 0;
  // Whether the credential is a certificate assertion (changes how a bare OAuth
  // `invalid_client` is classified).
  virtual bool is_certificate() const = 0;
};

class ClientSecret final : public ClientCredential {
 public:
  explicit ClientSecret(std::string secret) : secret_(std::move(secret)) {}
  absl::Status AppendFormFields(absl::Time now,
                                std::vector<std::pair<std::string, std::string>>* form) override;
  bool is_certificate() const override { return false; }

 private:
  std::string secret_;
};

// Signs a fresh JWT assertion for each request; the signer gets the request time.
class CertificateAssertion final : public ClientCredential {
 public:
  using Signer = std::function<absl::StatusOr<std::string>(absl::Time now)>;
  explicit CertificateAssertion(Signer signer) : signer_(std::move(signer)) {}
  absl::Status AppendFormFields(absl::Time now,
                                std::vector<std::pair<std::string, std::string>>* form) override;
  bool is_certificate() const override { return true; }

 private:
  Signer signer_;
};

struct TokenEndpointConfig {
  // https://login.microsoftonline.com/<tenant>/oauth2/v2.0/token
  std::string token_endpoint;
  std::string client_id;
  std::string scope;
  absl::Duration timeout = absl::Seconds(30);
};

class EntraTokenClient final : public TokenClient {
 public:
  // `transport` and `clock` must outlive the client.
  EntraTokenClient(TokenEndpointConfig config, std::unique_ptr<ClientCredential> credential,
                   HttpTransport* transport, const Clock* clock);
  absl::StatusOr<AccessToken> Fetch() override;

 private:
  TokenEndpointConfig config_;
  std::unique_ptr<ClientCredential> credential_;
  HttpTransport* transport_;
  const Clock* clock_;
};

// The token endpoint for an authority host ("https://login.microsoftonline.com", no
// trailing slash needed) and tenant.
std::string TokenEndpointFor(absl::string_view authority_host, absl::string_view tenant_id);

// Classifies a token-endpoint answer that is not a usable token. Exposed for tests over
// recorded Entra bodies. `now` resolves an HTTP-date Retry-After.
Diagnosis ClassifyTokenResponse(const HttpResponse& response, bool certificate_credential,
                                absl::Time now);
// Classifies a transport failure (no HTTP answer at all).
Diagnosis ClassifyTransportFailure(const absl::Status& status);

}  // namespace mailroom::broker

#endif  // MAILROOM_PAN_BROKER_TOKEN_CLIENT_H_
