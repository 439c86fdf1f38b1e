#include "common/crypto/jwt_assertion.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <cstdint>
#include <iterator>
#include <limits>
#include <memory>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/base/enum_names.h"
#include "common/base/utf8.h"
#include "common/crypto/openssl_util.h"

namespace mailroom::crypto {
namespace {

constexpr int kMinRsaBits = 2048;
constexpr int kPssSaltLength = 32;  // = SHA-256 digest length

absl::StatusOr<X509Ptr> ParseCertificate(absl::string_view pem) {
  if (pem.find_first_not_of(" \t\r\n") == absl::string_view::npos) {
    return absl::InvalidArgumentError("certificate is empty");
  }
  if (pem.size() > static_cast<size_t>(std::numeric_limits<int>::max())) {
    return absl::InvalidArgumentError("certificate is too large");
  }
  absl::StatusOr<X509Ptr> cert = ReadPemCertificate(pem);
  if (!cert.ok()) {
    return absl::Status(cert.status().code(),
                        absl::StrCat("certificate ", cert.status().message(),
                                     " (expected -----BEGIN CERTIFICATE-----)"));
  }
  return cert;
}

absl::StatusOr<std::string> Thumbprint(const X509* cert, const EVP_MD* md) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (X509_digest(cert, md, digest, &len) != 1) {
    return absl::InternalError(absl::StrCat("cannot hash the certificate", TakeOpenSslError()));
  }
  return absl::WebSafeBase64Escape(absl::string_view(reinterpret_cast<const char*>(digest), len));
}

absl::Status CheckText(absl::string_view field, absl::string_view value) {
  if (value.empty()) return absl::InvalidArgumentError(absl::StrCat(field, " is empty"));
  if (!IsValidUtf8(value)) {
    return absl::InvalidArgumentError(absl::StrCat(field, " is not valid UTF-8"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::string_view JwtAlgorithmName(JwtAlgorithm algorithm) {
  static constexpr absl::string_view kNames[] = {"PS256", "RS256"};
  static_assert(std::size(kNames) == EnumCount(JwtAlgorithm::kRs256), "a name per JwtAlgorithm");
  return EnumName(algorithm, kNames, "PS256");
}

absl::StatusOr<ClientAssertionSigner> ClientAssertionSigner::Create(
    absl::string_view certificate_pem, absl::string_view private_key_pem, JwtAlgorithm algorithm) {
  absl::StatusOr<X509Ptr> cert = ParseCertificate(certificate_pem);
  if (!cert.ok()) return cert.status();

  if (private_key_pem.find_first_not_of(" \t\r\n") == absl::string_view::npos) {
    return absl::InvalidArgumentError("private_key is missing");
  }
  if (private_key_pem.size() > static_cast<size_t>(std::numeric_limits<int>::max())) {
    return absl::InvalidArgumentError("private_key is too large");
  }
  if (absl::StrContains(private_key_pem, "-----BEGIN ENCRYPTED PRIVATE KEY-----") ||
      absl::StrContains(private_key_pem, "Proc-Type: 4,ENCRYPTED")) {
    return absl::InvalidArgumentError(
        "private_key is encrypted with a passphrase; provide it unencrypted (e.g. `openssl "
        "pkey -in key.pem -out plain.pem`)");
  }
  ClientAssertionSigner signer;
  signer.algorithm_ = algorithm;
  {
    BioPtr bio = MemoryBio(private_key_pem);
    signer.key_.reset(bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, RefusePassphrase, nullptr)
                          : nullptr);
  }
  if (signer.key_ == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        "private_key is not a PEM private key (expected -----BEGIN PRIVATE KEY----- or "
        "-----BEGIN RSA PRIVATE KEY-----)",
        TakeOpenSslError()));
  }
  if (EVP_PKEY_get_base_id(signer.key_.get()) != EVP_PKEY_RSA) {
    const char* type = EVP_PKEY_get0_type_name(signer.key_.get());
    return absl::InvalidArgumentError(
        absl::StrCat("private_key is not an RSA key (it is ", type != nullptr ? type : "unknown",
                     "); Entra ID certificate credentials need an RSA key"));
  }
  if (const int bits = EVP_PKEY_get_bits(signer.key_.get()); bits < kMinRsaBits) {
    return absl::InvalidArgumentError(absl::StrCat("private_key is a ", bits,
                                                   "-bit RSA key; Entra ID requires at least ",
                                                   kMinRsaBits, " bits"));
  }
  if (X509_check_private_key(cert->get(), signer.key_.get()) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError("private_key does not match certificate");
  }

  absl::StatusOr<std::string> sha256 = Thumbprint(cert->get(), EVP_sha256());
  if (!sha256.ok()) return sha256.status();
  absl::StatusOr<std::string> sha1 = Thumbprint(cert->get(), EVP_sha1());
  if (!sha1.ok()) return sha1.status();
  signer.thumbprint_sha256_ = *std::move(sha256);
  signer.thumbprint_sha1_ = *std::move(sha1);
  ERR_clear_error();  // OpenSSL's decoders may leave notes from formats they tried
  return signer;
}

absl::StatusOr<std::string> ClientAssertionSigner::Sign(const ClientAssertionClaims& claims) const {
  for (auto [field, value] :
       {std::pair{"client_id", &claims.client_id}, std::pair{"audience", &claims.audience},
        std::pair{"jti", &claims.jti}}) {
    if (absl::Status s = CheckText(field, *value); !s.ok()) return s;
  }
  // JWT NumericDate; keep exp well inside int64 and after the epoch.
  if (claims.issued_at < absl::UnixEpoch() ||
      claims.issued_at > absl::FromUnixSeconds(int64_t{1} << 40)) {
    return absl::InvalidArgumentError(
        absl::StrCat("issued_at is out of range: ", absl::FormatTime(claims.issued_at)));
  }
  if (claims.lifetime < absl::Seconds(1) || claims.lifetime > absl::Hours(24 * 365)) {
    return absl::InvalidArgumentError(
        absl::StrCat("lifetime must be between 1 second and 1 year, got ",
                     absl::FormatDuration(claims.lifetime)));
  }
  const int64_t iat = absl::ToUnixSeconds(claims.issued_at);
  const int64_t exp = iat + absl::ToInt64Seconds(claims.lifetime);

  const std::string header = absl::StrCat("{\"alg\":", JsonQuote(JwtAlgorithmName(algorithm_)),
                                          ",\"typ\":\"JWT\",\"x5t\":", JsonQuote(thumbprint_sha1_),
                                          ",\"x5t#S256\":", JsonQuote(thumbprint_sha256_), "}");
  const std::string payload = absl::StrCat(
      "{\"aud\":", JsonQuote(claims.audience), ",\"iss\":", JsonQuote(claims.client_id),
      ",\"sub\":", JsonQuote(claims.client_id), ",\"jti\":", JsonQuote(claims.jti),
      ",\"nbf\":", iat, ",\"iat\":", iat, ",\"exp\":", exp, "}");
  const std::string signing_input =
      absl::StrCat(absl::WebSafeBase64Escape(header), ".", absl::WebSafeBase64Escape(payload));

  EvpMdCtxPtr ctx(EVP_MD_CTX_new());
  EVP_PKEY_CTX* pkey_ctx = nullptr;  // owned by ctx
  bool ok = ctx != nullptr &&
            EVP_DigestSignInit(ctx.get(), &pkey_ctx, EVP_sha256(), nullptr, key_.get()) == 1;
  if (ok && algorithm_ == JwtAlgorithm::kPs256) {
    ok = EVP_PKEY_CTX_set_rsa_padding(pkey_ctx, RSA_PKCS1_PSS_PADDING) == 1 &&
         EVP_PKEY_CTX_set_rsa_pss_saltlen(pkey_ctx, kPssSaltLength) == 1 &&
         EVP_PKEY_CTX_set_rsa_mgf1_md(pkey_ctx, EVP_sha256()) == 1;
  } else if (ok) {
    ok = EVP_PKEY_CTX_set_rsa_padding(pkey_ctx, RSA_PKCS1_PADDING) == 1;
  }
  const auto* data = reinterpret_cast<const unsigned char*>(signing_input.data());
  size_t signature_size = 0;
  ok = ok && EVP_DigestSign(ctx.get(), nullptr, &signature_size, data, signing_input.size()) == 1;
  std::string signature(signature_size, '\0');
  ok = ok && EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(&signature[0]),
                            &signature_size, data, signing_input.size()) == 1;
  if (!ok) {
    return absl::InternalError(absl::StrCat("cannot sign the client assertion (",
                                            JwtAlgorithmName(algorithm_), ")", TakeOpenSslError()));
  }
  signature.resize(signature_size);
  return absl::StrCat(signing_input, ".", absl::WebSafeBase64Escape(signature));
}

absl::StatusOr<std::string> MakeClientAssertion(absl::string_view certificate_pem,
                                                absl::string_view private_key_pem,
                                                const ClientAssertionClaims& claims,
                                                JwtAlgorithm algorithm) {
  absl::StatusOr<ClientAssertionSigner> signer =
      ClientAssertionSigner::Create(certificate_pem, private_key_pem, algorithm);
  if (!signer.ok()) return signer.status();
  return signer->Sign(claims);
}

absl::StatusOr<std::string> CertificateThumbprintSha256(absl::string_view certificate_pem) {
  absl::StatusOr<X509Ptr> cert = ParseCertificate(certificate_pem);
  if (!cert.ok()) return cert.status();
  return Thumbprint(cert->get(), EVP_sha256());
}

absl::StatusOr<std::string> NewJwtId() {
  unsigned char b[16];
  if (RAND_bytes(b, sizeof(b)) != 1) {
    ERR_clear_error();
    return absl::InternalError("RAND_bytes failed while making a jti");
  }
  b[6] = (b[6] & 0x0f) | 0x40;  // version 4
  b[8] = (b[8] & 0x3f) | 0x80;  // RFC 4122 variant
  return absl::StrFormat("%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
                         b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11],
                         b[12], b[13], b[14], b[15]);
}

}  // namespace mailroom::crypto
