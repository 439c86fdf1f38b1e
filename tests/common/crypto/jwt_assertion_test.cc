// Entra ID client assertions, built from an RSA key and self-signed certificate made here with
// OpenSSL, then taken apart and verified independently: base64url and hashes with OpenSSL,
// JSON with protobuf's parser, and the signature with EVP_DigestVerify and the certificate's
// public key.
#include "common/crypto/jwt_assertion.h"

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <openssl/bio.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mailroom::crypto {
namespace {

using ::google::protobuf::Struct;
using ::google::protobuf::Value;
using ::testing::HasSubstr;
using ::testing::MatchesRegex;
using ::testing::UnorderedElementsAre;

constexpr char kClientId[] = "8d1c6f3a-52b9-4c1e-9a47-0f3e2d6b7a10";
constexpr char kTokenUrl[] =
    "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/oauth2/v2.0/token";
constexpr char kJti[] = "0b7e9a54-1f2d-4c3b-8e6a-9d5c4b3a2f10";
const absl::Time kIssuedAt = absl::FromUnixSeconds(1767225600);  // 2026-01-01T00:00:00Z

// ---- Test material, made with the OpenSSL API. ----

std::string BioToString(BIO* bio) {
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio, &data);
  std::string out(data, len);
  BIO_free(bio);
  return out;
}

std::string PrivateKeyPem(EVP_PKEY* key) {  // PKCS#8, "BEGIN PRIVATE KEY"
  BIO* bio = BIO_new(BIO_s_mem());
  EXPECT_EQ(PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr), 1);
  return BioToString(bio);
}

std::string TraditionalKeyPem(EVP_PKEY* key) {  // PKCS#1, "BEGIN RSA PRIVATE KEY"
  BIO* bio = BIO_new(BIO_s_mem());
  EXPECT_EQ(PEM_write_bio_PrivateKey_traditional(bio, key, nullptr, nullptr, 0, nullptr, nullptr),
            1);
  return BioToString(bio);
}

std::string EncryptedKeyPem(EVP_PKEY* key) {  // "BEGIN ENCRYPTED PRIVATE KEY"
  BIO* bio = BIO_new(BIO_s_mem());
  char pass[] = "passphrase";
  EXPECT_EQ(PEM_write_bio_PKCS8PrivateKey(bio, key, EVP_aes_256_cbc(), nullptr, 0, nullptr, pass),
            1);
  return BioToString(bio);
}

std::string EncryptedTraditionalKeyPem(EVP_PKEY* key) {  // "Proc-Type: 4,ENCRYPTED"
  BIO* bio = BIO_new(BIO_s_mem());
  unsigned char pass[] = "passphrase";
  EXPECT_EQ(
      PEM_write_bio_PrivateKey_traditional(bio, key, EVP_aes_256_cbc(), pass, 10, nullptr, nullptr),
      1);
  return BioToString(bio);
}

std::string SelfSignedCertificatePem(EVP_PKEY* key, const char* cn) {
  X509* cert = X509_new();
  X509_set_version(cert, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert), 4242);
  X509_gmtime_adj(X509_getm_notBefore(cert), 0);
  X509_gmtime_adj(X509_getm_notAfter(cert), 365L * 24 * 3600);
  X509_NAME* name = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn),
                             -1, -1, 0);
  X509_set_issuer_name(cert, name);
  X509_set_pubkey(cert, key);
  EXPECT_GT(X509_sign(cert, key, EVP_sha256()), 0);
  BIO* bio = BIO_new(BIO_s_mem());
  EXPECT_EQ(PEM_write_bio_X509(bio, cert), 1);
  X509_free(cert);
  return BioToString(bio);
}

struct Identity {
  EVP_PKEY* key;
  std::string key_pem;
  std::string cert_pem;
};

Identity MakeIdentity(EVP_PKEY* key, const char* cn) {
  return Identity{key, PrivateKeyPem(key), SelfSignedCertificatePem(key, cn)};
}

// ---- Independent decoding. ----

// RFC 4648 §5 base64url without padding, decoded with OpenSSL's plain base64 decoder.
bool Base64UrlDecode(absl::string_view in, std::string* out) {
  if (in.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") !=
      absl::string_view::npos) {
    return false;  // includes '=' padding, '+' and '/'
  }
  std::string b64 = absl::StrReplaceAll(in, {{"-", "+"}, {"_", "/"}});
  if (b64.size() % 4 == 1) return false;
  while (b64.size() % 4 != 0) b64 += '=';
  out->assign(b64.size(), '\0');
  EVP_ENCODE_CTX* ctx = EVP_ENCODE_CTX_new();
  EVP_DecodeInit(ctx);
  int len = 0, final_len = 0;
  const bool ok =
      EVP_DecodeUpdate(ctx, reinterpret_cast<unsigned char*>(&(*out)[0]), &len,
                       reinterpret_cast<const unsigned char*>(b64.data()), b64.size()) >= 0 &&
      EVP_DecodeFinal(ctx, reinterpret_cast<unsigned char*>(&(*out)[len]), &final_len) == 1;
  EVP_ENCODE_CTX_free(ctx);
  out->resize(len + final_len);
  return ok;
}

std::string Base64UrlEncode(absl::string_view in) {
  std::string b64(4 * ((in.size() + 2) / 3) + 1, '\0');
  const int len = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(&b64[0]),
                                  reinterpret_cast<const unsigned char*>(in.data()), in.size());
  b64.resize(len);
  while (!b64.empty() && b64.back() == '=') b64.pop_back();
  return absl::StrReplaceAll(b64, {{"+", "-"}, {"/", "_"}});
}

// The certificate's DER, from the PEM's base64 body (no X.509 parsing involved).
std::string DerOfPem(const std::string& pem) {
  std::string body;
  for (absl::string_view line : absl::StrSplit(pem, '\n')) {
    if (!line.empty() && line[0] != '-') absl::StrAppend(&body, line);
  }
  std::string der(body.size(), '\0');
  const int len = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(&der[0]),
                                  reinterpret_cast<const unsigned char*>(body.data()), body.size());
  EXPECT_GT(len, 0);
  der.resize(len);
  while (!body.empty() && body.back() == '=') {  // EVP_DecodeBlock keeps padding's zero bytes
    body.pop_back();
    der.pop_back();
  }
  return der;
}

std::string Digest(const EVP_MD* md, absl::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EXPECT_EQ(EVP_Digest(data.data(), data.size(), out, &len, md, nullptr), 1);
  return std::string(reinterpret_cast<char*>(out), len);
}

Struct ParseJson(const std::string& json) {
  Struct parsed;
  auto status = google::protobuf::util::JsonStringToMessage(json, &parsed);
  EXPECT_TRUE(status.ok()) << status.ToString() << " in " << json;
  return parsed;
}

std::vector<std::string> Keys(const Struct& s) {
  std::vector<std::string> keys;
  for (const auto& [key, value] : s.fields()) keys.push_back(key);
  return keys;
}

struct DecodedJwt {
  std::string header_json;
  std::string claims_json;
  std::string signature;
  std::string signing_input;  // "header.claims" exactly as sent
  Struct header;
  Struct claims;
};

DecodedJwt Decode(const std::string& jwt) {
  DecodedJwt out;
  std::vector<std::string> parts = absl::StrSplit(jwt, '.');
  EXPECT_EQ(parts.size(), 3u) << jwt;
  if (parts.size() != 3) return out;
  EXPECT_TRUE(Base64UrlDecode(parts[0], &out.header_json)) << parts[0];
  EXPECT_TRUE(Base64UrlDecode(parts[1], &out.claims_json)) << parts[1];
  EXPECT_TRUE(Base64UrlDecode(parts[2], &out.signature)) << parts[2];
  out.signing_input = absl::StrCat(parts[0], ".", parts[1]);
  out.header = ParseJson(out.header_json);
  out.claims = ParseJson(out.claims_json);
  return out;
}

// Verifies `signature` over `data` with the certificate's public key.
bool Verify(const std::string& cert_pem, absl::string_view data, absl::string_view signature,
            JwtAlgorithm algorithm) {
  BIO* bio = BIO_new_mem_buf(cert_pem.data(), cert_pem.size());
  X509* cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  EXPECT_NE(cert, nullptr);
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_PKEY_CTX* pctx = nullptr;
  bool ok = EVP_DigestVerifyInit(ctx, &pctx, EVP_sha256(), nullptr, X509_get0_pubkey(cert)) == 1;
  if (algorithm == JwtAlgorithm::kPs256) {
    ok = ok && EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) == 1 &&
         EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, 32) == 1 &&
         EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha256()) == 1;
  } else {
    ok = ok && EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) == 1;
  }
  EXPECT_TRUE(ok);
  const bool verified =
      EVP_DigestVerify(ctx, reinterpret_cast<const unsigned char*>(signature.data()),
                       signature.size(), reinterpret_cast<const unsigned char*>(data.data()),
                       data.size()) == 1;
  EVP_MD_CTX_free(ctx);
  X509_free(cert);
  ERR_clear_error();
  return verified;
}

ClientAssertionClaims TestClaims() {
  ClientAssertionClaims claims;
  claims.client_id = kClientId;
  claims.audience = kTokenUrl;
  claims.jti = kJti;
  claims.issued_at = kIssuedAt;
  return claims;
}

class JwtAssertionTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    rsa_ = new Identity(MakeIdentity(EVP_RSA_gen(2048), "mailroom broker"));
    other_rsa_ = new Identity(MakeIdentity(EVP_RSA_gen(2048), "someone else"));
    ec_ = new Identity(MakeIdentity(EVP_EC_gen("P-256"), "mailroom ec"));
  }

  static Identity* rsa_;
  static Identity* other_rsa_;
  static Identity* ec_;
};

Identity* JwtAssertionTest::rsa_ = nullptr;
Identity* JwtAssertionTest::other_rsa_ = nullptr;
Identity* JwtAssertionTest::ec_ = nullptr;

TEST_F(JwtAssertionTest, Ps256AssertionHasEveryFieldAndVerifies) {
  absl::StatusOr<std::string> jwt =
      MakeClientAssertion(rsa_->cert_pem, rsa_->key_pem, TestClaims());
  ASSERT_TRUE(jwt.ok()) << jwt.status();
  const DecodedJwt d = Decode(*jwt);

  const std::string der = DerOfPem(rsa_->cert_pem);
  EXPECT_THAT(Keys(d.header), UnorderedElementsAre("alg", "typ", "x5t", "x5t#S256"));
  EXPECT_EQ(d.header.fields().at("alg").string_value(), "PS256");
  EXPECT_EQ(d.header.fields().at("typ").string_value(), "JWT");
  EXPECT_EQ(d.header.fields().at("x5t#S256").string_value(),
            Base64UrlEncode(Digest(EVP_sha256(), der)));
  EXPECT_EQ(d.header.fields().at("x5t").string_value(), Base64UrlEncode(Digest(EVP_sha1(), der)));
  EXPECT_THAT(d.header.fields().at("x5t#S256").string_value(), ::testing::SizeIs(43));

  EXPECT_THAT(Keys(d.claims),
              UnorderedElementsAre("aud", "iss", "sub", "jti", "nbf", "iat", "exp"));
  EXPECT_EQ(d.claims.fields().at("aud").string_value(), kTokenUrl);
  EXPECT_EQ(d.claims.fields().at("iss").string_value(), kClientId);
  EXPECT_EQ(d.claims.fields().at("sub").string_value(), kClientId);
  EXPECT_EQ(d.claims.fields().at("jti").string_value(), kJti);
  for (const char* time_claim : {"nbf", "iat", "exp"}) {
    EXPECT_EQ(d.claims.fields().at(time_claim).kind_case(), Value::kNumberValue) << time_claim;
  }
  EXPECT_EQ(d.claims.fields().at("iat").number_value(), 1767225600);
  EXPECT_EQ(d.claims.fields().at("nbf").number_value(), 1767225600);
  EXPECT_EQ(d.claims.fields().at("exp").number_value(), 1767225600 + 600);
  // Integers, not 1.7672256E9 or "1767225600".
  EXPECT_THAT(d.claims_json, HasSubstr("\"iat\":1767225600,"));
  EXPECT_THAT(d.claims_json, HasSubstr("\"exp\":1767226200}"));

  EXPECT_THAT(d.signature, ::testing::SizeIs(256));  // 2048-bit key
  EXPECT_TRUE(Verify(rsa_->cert_pem, d.signing_input, d.signature, JwtAlgorithm::kPs256));
  EXPECT_FALSE(Verify(rsa_->cert_pem, d.signing_input, d.signature, JwtAlgorithm::kRs256));
  EXPECT_FALSE(Verify(other_rsa_->cert_pem, d.signing_input, d.signature, JwtAlgorithm::kPs256));
}

TEST_F(JwtAssertionTest, Rs256AssertionVerifiesWithPkcs1) {
  absl::StatusOr<std::string> jwt =
      MakeClientAssertion(rsa_->cert_pem, rsa_->key_pem, TestClaims(), JwtAlgorithm::kRs256);
  ASSERT_TRUE(jwt.ok()) << jwt.status();
  const DecodedJwt d = Decode(*jwt);
  EXPECT_EQ(d.header.fields().at("alg").string_value(), "RS256");
  EXPECT_TRUE(Verify(rsa_->cert_pem, d.signing_input, d.signature, JwtAlgorithm::kRs256));
  EXPECT_FALSE(Verify(rsa_->cert_pem, d.signing_input, d.signature, JwtAlgorithm::kPs256));
  // PKCS#1 v1.5 is deterministic.
  EXPECT_EQ(*jwt, *MakeClientAssertion(rsa_->cert_pem, rsa_->key_pem, TestClaims(),
                                       JwtAlgorithm::kRs256));
}

TEST_F(JwtAssertionTest, SameInputsGiveSameHeaderAndClaimsAndFreshPssSignatures) {
  auto signer = ClientAssertionSigner::Create(rsa_->cert_pem, rsa_->key_pem);
  ASSERT_TRUE(signer.ok()) << signer.status();
  EXPECT_EQ(signer->algorithm(), JwtAlgorithm::kPs256);
  const DecodedJwt a = Decode(*signer->Sign(TestClaims()));
  const DecodedJwt b = Decode(*signer->Sign(TestClaims()));
  EXPECT_EQ(a.signing_input, b.signing_input);
  EXPECT_NE(a.signature, b.signature);  // PSS salts are random
  EXPECT_TRUE(Verify(rsa_->cert_pem, b.signing_input, b.signature, JwtAlgorithm::kPs256));
}

TEST_F(JwtAssertionTest, LifetimeSetsExpiry) {
  ClientAssertionClaims claims = TestClaims();
  claims.lifetime = absl::Minutes(5);
  claims.issued_at = kIssuedAt + absl::Milliseconds(900);  // fractions are dropped
  const DecodedJwt d = Decode(*MakeClientAssertion(rsa_->cert_pem, rsa_->key_pem, claims));
  const double iat = d.claims.fields().at("iat").number_value();
  EXPECT_EQ(iat, 1767225600);
  EXPECT_EQ(d.claims.fields().at("nbf").number_value(), iat);
  EXPECT_EQ(d.claims.fields().at("exp").number_value() - iat, 300);
}

TEST_F(JwtAssertionTest, TamperedSegmentsFailVerification) {
  const DecodedJwt d = Decode(*MakeClientAssertion(rsa_->cert_pem, rsa_->key_pem, TestClaims()));
  std::vector<std::string> parts = absl::StrSplit(d.signing_input, '.');
  ASSERT_EQ(parts.size(), 2u);

  // A later expiry, otherwise identical.
  const std::string later = absl::StrReplaceAll(d.claims_json, {{"1767226200", "1767229200"}});
  ASSERT_NE(later, d.claims_json);
  EXPECT_FALSE(Verify(rsa_->cert_pem, absl::StrCat(parts[0], ".", Base64UrlEncode(later)),
                      d.signature, JwtAlgorithm::kPs256));
  // Another audience.
  const std::string aud =
      absl::StrReplaceAll(d.claims_json, {{"login.microsoftonline.com", "login.example.com"}});
  EXPECT_FALSE(Verify(rsa_->cert_pem, absl::StrCat(parts[0], ".", Base64UrlEncode(aud)),
                      d.signature, JwtAlgorithm::kPs256));
  // RS256 in the header.
  const std::string rs = absl::StrReplaceAll(d.header_json, {{"PS256", "RS256"}});
  EXPECT_FALSE(Verify(rsa_->cert_pem, absl::StrCat(Base64UrlEncode(rs), ".", parts[1]), d.signature,
                      JwtAlgorithm::kPs256));
  // A flipped signature bit.
  std::string signature = d.signature;
  signature[10] ^= 0x01;
  EXPECT_FALSE(Verify(rsa_->cert_pem, d.signing_input, signature, JwtAlgorithm::kPs256));
  // The untouched original still verifies.
  EXPECT_TRUE(Verify(rsa_->cert_pem, d.signing_input, d.signature, JwtAlgorithm::kPs256));
}

TEST_F(JwtAssertionTest, TraditionalRsaKeyAndCombinedPemAreAccepted) {
  const std::string traditional = TraditionalKeyPem(rsa_->key);
  ASSERT_THAT(traditional, HasSubstr("BEGIN RSA PRIVATE KEY"));
  absl::StatusOr<std::string> jwt = MakeClientAssertion(rsa_->cert_pem, traditional, TestClaims());
  ASSERT_TRUE(jwt.ok()) << jwt.status();
  const DecodedJwt d = Decode(*jwt);
  EXPECT_TRUE(Verify(rsa_->cert_pem, d.signing_input, d.signature, JwtAlgorithm::kPs256));

  // One file holding both, in either order.
  for (const std::string& combined :
       {rsa_->cert_pem + rsa_->key_pem, rsa_->key_pem + rsa_->cert_pem}) {
    auto signer = ClientAssertionSigner::Create(combined, combined);
    ASSERT_TRUE(signer.ok()) << signer.status();
    EXPECT_TRUE(signer->Sign(TestClaims()).ok());
  }
}

TEST_F(JwtAssertionTest, ThumbprintsMatchIndependentHashesOfTheDer) {
  const std::string der = DerOfPem(rsa_->cert_pem);
  absl::StatusOr<std::string> thumbprint = CertificateThumbprintSha256(rsa_->cert_pem);
  ASSERT_TRUE(thumbprint.ok()) << thumbprint.status();
  EXPECT_EQ(*thumbprint, Base64UrlEncode(Digest(EVP_sha256(), der)));

  auto signer = ClientAssertionSigner::Create(rsa_->cert_pem, rsa_->key_pem);
  ASSERT_TRUE(signer.ok());
  EXPECT_EQ(signer->thumbprint_sha256(), *thumbprint);
  EXPECT_EQ(signer->thumbprint_sha1(), Base64UrlEncode(Digest(EVP_sha1(), der)));
  EXPECT_NE(*CertificateThumbprintSha256(other_rsa_->cert_pem), *thumbprint);

  absl::StatusOr<std::string> bad = CertificateThumbprintSha256("not a certificate");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr("certificate"));
}

void ExpectInvalid(const absl::StatusOr<std::string>& result, absl::string_view message) {
  ASSERT_FALSE(result.ok()) << "expected an error containing: " << message;
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument) << result.status();
  EXPECT_THAT(result.status().message(), HasSubstr(message));
}

TEST_F(JwtAssertionTest, MismatchedKeyIsRefused) {
  ExpectInvalid(MakeClientAssertion(rsa_->cert_pem, other_rsa_->key_pem, TestClaims()),
                "private_key does not match certificate");
  EXPECT_EQ(ERR_peek_error(), 0u);  // no stale OpenSSL errors left behind
}

TEST_F(JwtAssertionTest, EcKeyIsRefusedAsNotRsa) {
  ExpectInvalid(MakeClientAssertion(ec_->cert_pem, ec_->key_pem, TestClaims()),
                "private_key is not an RSA key (it is EC)");
  ExpectInvalid(MakeClientAssertion(rsa_->cert_pem, ec_->key_pem, TestClaims()),
                "private_key is not an RSA key");
}

TEST_F(JwtAssertionTest, ShortRsaKeyIsRefused) {
  const Identity small = MakeIdentity(EVP_RSA_gen(1024), "small");
  ExpectInvalid(MakeClientAssertion(small.cert_pem, small.key_pem, TestClaims()),
                "private_key is a 1024-bit RSA key");
  EVP_PKEY_free(small.key);
}

TEST_F(JwtAssertionTest, BadCertificateIsRefused) {
  for (const std::string& cert :
       {std::string(), std::string("\n"), std::string("garbage"), rsa_->key_pem,
        std::string("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")}) {
    ExpectInvalid(MakeClientAssertion(cert, rsa_->key_pem, TestClaims()), "certificate");
    ExpectInvalid(CertificateThumbprintSha256(cert), "certificate");
  }
  EXPECT_EQ(ERR_peek_error(), 0u);
}

TEST_F(JwtAssertionTest, MissingEncryptedOrGarbageKeyIsRefused) {
  ExpectInvalid(MakeClientAssertion(rsa_->cert_pem, "", TestClaims()), "private_key is missing");
  ExpectInvalid(MakeClientAssertion(rsa_->cert_pem, EncryptedKeyPem(rsa_->key), TestClaims()),
                "private_key is encrypted");
  ExpectInvalid(
      MakeClientAssertion(rsa_->cert_pem, EncryptedTraditionalKeyPem(rsa_->key), TestClaims()),
      "private_key is encrypted");
  ExpectInvalid(MakeClientAssertion(rsa_->cert_pem, "garbage", TestClaims()),
                "private_key is not a PEM private key");
  ExpectInvalid(MakeClientAssertion(rsa_->cert_pem, rsa_->cert_pem, TestClaims()),
                "private_key is not a PEM private key");
  EXPECT_EQ(ERR_peek_error(), 0u);
}

TEST_F(JwtAssertionTest, BadClaimsAreRefusedByName) {
  auto signer = ClientAssertionSigner::Create(rsa_->cert_pem, rsa_->key_pem);
  ASSERT_TRUE(signer.ok());
  ClientAssertionClaims claims = TestClaims();
  claims.client_id = "";
  ExpectInvalid(signer->Sign(claims), "client_id is empty");
  claims = TestClaims();
  claims.audience = "";
  ExpectInvalid(signer->Sign(claims), "audience is empty");
  claims = TestClaims();
  claims.jti = "";
  ExpectInvalid(signer->Sign(claims), "jti is empty");
  claims = TestClaims();
  claims.client_id = "bad\xff";
  ExpectInvalid(signer->Sign(claims), "client_id is not valid UTF-8");
  claims = TestClaims();
  claims.audience = "\xc0\xaf";  // overlong '/'
  ExpectInvalid(signer->Sign(claims), "audience is not valid UTF-8");
  claims = TestClaims();
  claims.lifetime = absl::ZeroDuration();
  ExpectInvalid(signer->Sign(claims), "lifetime");
  claims = TestClaims();
  claims.issued_at = absl::InfiniteFuture();
  ExpectInvalid(signer->Sign(claims), "issued_at");
}

TEST_F(JwtAssertionTest, JsonStringsAreEscaped) {
  ClientAssertionClaims claims = TestClaims();
  claims.client_id = "a\"b\\c/d\n\t\x01 é";
  claims.jti = "\xe2\x80\xa8";  // U+2028
  const DecodedJwt d = Decode(*MakeClientAssertion(rsa_->cert_pem, rsa_->key_pem, claims));
  EXPECT_EQ(d.claims.fields().at("iss").string_value(), claims.client_id);
  EXPECT_EQ(d.claims.fields().at("sub").string_value(), claims.client_id);
  EXPECT_EQ(d.claims.fields().at("jti").string_value(), claims.jti);
  EXPECT_TRUE(Verify(rsa_->cert_pem, d.signing_input, d.signature, JwtAlgorithm::kPs256));
}

TEST(NewJwtIdTest, IsARandomVersion4Guid) {
  std::set<std::string> seen;
  for (int i = 0; i < 100; ++i) {
    absl::StatusOr<std::string> id = NewJwtId();
    ASSERT_TRUE(id.ok()) << id.status();
    EXPECT_THAT(*id, MatchesRegex("[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-"
                                  "[0-9a-f]{12}"));
    seen.insert(*id);
  }
  EXPECT_EQ(seen.size(), 100u);
}

TEST(JwtAlgorithmTest, Names) {
  EXPECT_EQ(JwtAlgorithmName(JwtAlgorithm::kPs256), "PS256");
  EXPECT_EQ(JwtAlgorithmName(JwtAlgorithm::kRs256), "RS256");
}

}  // namespace
}  // namespace mailroom::crypto
