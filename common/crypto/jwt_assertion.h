// Provides the Entra ID certificate credential: a client assertion JWT signed with the
// private key of a certificate registered on the application, sent to the token endpoint as
// `client_assertion` (with client_assertion_type urn:ietf:params:oauth:client-assertion-type:
// jwt-bearer) in place of a client secret. Thread-safe: a ClientAssertionSigner is immutable
// after Create and may sign from several threads at once; the free functions share no state.
//
// The assertion is a compact JWS, base64url(header) "." base64url(claims) "." base64url(sig),
// base64url without padding (RFC 7515). Its JSON is written compactly in this order:
//
//   header {"alg":"PS256","typ":"JWT","x5t":"<b64url SHA-1(cert DER)>",
//           "x5t#S256":"<b64url SHA-256(cert DER)>"}
//   claims {"aud":"<token endpoint URL>","iss":"<client id>","sub":"<client id>",
//           "jti":"<GUID>","nbf":<iat>,"iat":<iat>,"exp":<iat + lifetime>}
//
// Entra ID accepts either thumbprint; `x5t#S256` is the current one and `x5t` (SHA-1) is what
// older Entra and MSAL versions look for, so both are sent. Times are integer seconds since
// the Unix epoch. PS256 is RSASSA-PSS with SHA-256, MGF1-SHA-256 and a 32-byte salt (the
// digest length); RS256 is RSASSA-PKCS1-v1_5 with SHA-256 (PS256 signatures are randomized,
// RS256 ones are deterministic).
//
// Nothing here reads the clock or invents identifiers: the caller passes the issue time and
// the jti (NewJwtId makes a fresh one), so tests are deterministic.
#ifndef MAILROOM_COMMON_CRYPTO_JWT_ASSERTION_H_
#define MAILROOM_COMMON_CRYPTO_JWT_ASSERTION_H_

#include <openssl/types.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/crypto/openssl_util.h"

namespace mailroom::crypto {

enum class JwtAlgorithm {
  kPs256,  // RSASSA-PSS SHA-256: what Entra ID documents today
  kRs256,  // RSASSA-PKCS1-v1_5 SHA-256: older documentation; still accepted
};

// "PS256" or "RS256", as written in the header's "alg".
absl::string_view JwtAlgorithmName(JwtAlgorithm algorithm);

inline constexpr absl::Duration kDefaultAssertionLifetime = absl::Minutes(10);

// What one assertion says. Strings must be non-empty, valid UTF-8.
struct ClientAssertionClaims {
  std::string client_id;  // the application (client) ID: "iss" and "sub"
  std::string audience;   // "aud": the token endpoint URL the assertion is posted to
  std::string jti;        // a fresh GUID for every assertion (see NewJwtId)
  absl::Time issued_at;   // "iat" and "nbf" (whole seconds; fractions are dropped)
  absl::Duration lifetime = kDefaultAssertionLifetime;  // "exp" = iat + lifetime (>= 1 s)
};

// A validated certificate and RSA private key that signs client assertions.
class ClientAssertionSigner {
 public:
  // Parses the PEM certificate (the first one, if a chain is given) and the unencrypted PEM
  // private key (PKCS#8 or PKCS#1; both may come from one combined PEM file). INVALID_ARGUMENT
  // naming the field when:
  //   "certificate ..."  it is empty or not a PEM certificate;
  //   "private_key ..."  it is missing, encrypted, not a PEM private key, not RSA, or an RSA
  //                      key shorter than 2048 bits (Entra ID's minimum);
  //   "private_key does not match certificate"  (X509_check_private_key).
  static absl::StatusOr<ClientAssertionSigner> Create(
      absl::string_view certificate_pem, absl::string_view private_key_pem,
      JwtAlgorithm algorithm = JwtAlgorithm::kPs256);

  ClientAssertionSigner(ClientAssertionSigner&&) = default;
  ClientAssertionSigner& operator=(ClientAssertionSigner&&) = default;

  // The compact JWS. INVALID_ARGUMENT naming the claim field ("client_id", "audience",
  // "jti", "issued_at", "lifetime") when one is empty, not UTF-8 or out of range; INTERNAL
  // if OpenSSL fails to sign.
  absl::StatusOr<std::string> Sign(const ClientAssertionClaims& claims) const;

  JwtAlgorithm algorithm() const { return algorithm_; }
  // base64url(SHA-256(certificate DER)): the header's "x5t#S256".
  const std::string& thumbprint_sha256() const { return thumbprint_sha256_; }
  // base64url(SHA-1(certificate DER)): the header's "x5t".
  const std::string& thumbprint_sha1() const { return thumbprint_sha1_; }

 private:
  ClientAssertionSigner() = default;

  EvpPkeyPtr key_;
  JwtAlgorithm algorithm_ = JwtAlgorithm::kPs256;
  std::string thumbprint_sha256_;
  std::string thumbprint_sha1_;
};

// One-shot ClientAssertionSigner::Create(...) then Sign(claims), with the same errors.
absl::StatusOr<std::string> MakeClientAssertion(absl::string_view certificate_pem,
                                                absl::string_view private_key_pem,
                                                const ClientAssertionClaims& claims,
                                                JwtAlgorithm algorithm = JwtAlgorithm::kPs256);

// base64url(SHA-256(certificate DER)) of the first certificate in `certificate_pem` (the
// header's "x5t#S256"), for showing an administrator which certificate is in use.
// INVALID_ARGUMENT "certificate ..." when it is empty or not a PEM certificate.
absl::StatusOr<std::string> CertificateThumbprintSha256(absl::string_view certificate_pem);

// A random RFC 4122 version-4 GUID in lowercase ("xxxxxxxx-xxxx-4xxx-[89ab]xxx-xxxxxxxxxxxx")
// from RAND_bytes, for the "jti" claim. INTERNAL if the random generator fails.
absl::StatusOr<std::string> NewJwtId();

}  // namespace mailroom::crypto

#endif  // MAILROOM_COMMON_CRYPTO_JWT_ASSERTION_H_
