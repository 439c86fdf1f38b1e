// CaCertificatesOnly with certificates and keys made by the OpenSSL API: CA certificates
// pass and come back re-encoded without the text around them; a key, a token, a leaf
// certificate, a malformed block and an oversized bundle are refused saying why.
#include "common/crypto/ca_bundle.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mailroom::crypto {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::string BioToString(BIO* bio) {
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio, &data);
  std::string out(data, len);
  BIO_free(bio);
  return out;
}

class CaBundleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    key_ = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
    ASSERT_NE(key_, nullptr);
  }
  void TearDown() override { EVP_PKEY_free(key_); }

  std::string CertificatePem(const char* cn, bool is_ca) {
    X509* cert = X509_new();
    X509_set_version(cert, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert), 4242);
    X509_gmtime_adj(X509_getm_notBefore(cert), 0);
    X509_gmtime_adj(X509_getm_notAfter(cert), 365L * 24 * 3600);
    X509_NAME* name = X509_get_subject_name(cert);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>(cn), -1, -1, 0);
    X509_set_issuer_name(cert, name);
    X509_set_pubkey(cert, key_);
    if (is_ca) {
      X509_EXTENSION* ext =
          X509V3_EXT_conf_nid(nullptr, nullptr, NID_basic_constraints, "critical,CA:TRUE");
      EXPECT_NE(ext, nullptr);
      X509_add_ext(cert, ext, -1);
      X509_EXTENSION_free(ext);
    }
    EXPECT_GT(X509_sign(cert, key_, EVP_sha256()), 0);
    BIO* bio = BIO_new(BIO_s_mem());
    EXPECT_EQ(PEM_write_bio_X509(bio, cert), 1);
    X509_free(cert);
    return BioToString(bio);
  }

  std::string KeyPem() {
    BIO* bio = BIO_new(BIO_s_mem());
    EXPECT_EQ(PEM_write_bio_PrivateKey(bio, key_, nullptr, nullptr, 0, nullptr, nullptr), 1);
    return BioToString(bio);
  }

  EVP_PKEY* key_ = nullptr;
};

TEST_F(CaBundleTest, CaCertificatesPassWithoutTheTextAroundThem) {
  const std::string root = CertificatePem("Root CA", true);
  const std::string issuing = CertificatePem("Issuing CA", true);
  absl::StatusOr<std::string> bundle =
      CaCertificatesOnly(absl::StrCat("# Root\n", root, "some words\n", issuing, "trailer\n"));
  ASSERT_TRUE(bundle.ok()) << bundle.status();
  EXPECT_EQ(*bundle, root + issuing);
  EXPECT_THAT(*bundle, Not(HasSubstr("some words")));
}

TEST_F(CaBundleTest, APrivateKeyIsRefusedAloneOrBesideACertificate) {
  for (const std::string& pem : {KeyPem(), CertificatePem("Root CA", true) + KeyPem()}) {
    absl::StatusOr<std::string> bundle = CaCertificatesOnly(pem);
    EXPECT_EQ(bundle.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(bundle.status().message(), HasSubstr("\"PRIVATE KEY\", not a CERTIFICATE"));
  }
}

TEST_F(CaBundleTest, TextWithoutAnyCertificateIsRefused) {
  // A Kubernetes service-account token is a JWT: no PEM at all.
  absl::StatusOr<std::string> bundle = CaCertificatesOnly(
      "eyJhbGciOiJSUzI1NiIsImtpZCI6IiJ9.eyJpc3MiOiJrdWJlcm5ldGVzIn0.c2lnbmF0dXJl");
  EXPECT_EQ(bundle.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bundle.status().message(), HasSubstr("holds no PEM certificate"));
  EXPECT_FALSE(CaCertificatesOnly("").ok());
}

TEST_F(CaBundleTest, ALeafCertificateIsNotACa) {
  absl::StatusOr<std::string> bundle = CaCertificatesOnly(CertificatePem("smtp.example", false));
  EXPECT_EQ(bundle.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bundle.status().message(), HasSubstr("(/CN=smtp.example) is not a CA certificate"));
}

TEST_F(CaBundleTest, MalformedBlocksAreRefused) {
  const std::string root = CertificatePem("Root CA", true);
  const std::string truncated = root.substr(0, root.size() / 2);
  EXPECT_THAT(CaCertificatesOnly(truncated).status().message(), HasSubstr("malformed"));
  EXPECT_THAT(
      CaCertificatesOnly("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
          .status()
          .message(),
      HasSubstr("does not parse as X.509"));
}

TEST_F(CaBundleTest, AnOversizedBundleIsRefused) {
  const std::string root = CertificatePem("Root CA", true);
  std::string big;
  while (big.size() <= kMaxCaBundleBytes) big += root;
  EXPECT_THAT(CaCertificatesOnly(big).status().message(), HasSubstr("larger than 1 MiB"));
}

TEST_F(CaBundleTest, FilesAreCheckedAndReadOnlyUpToTheLimit) {
  const std::string dir = getenv("TEST_TMPDIR");
  const std::string root = CertificatePem("Root CA", true);
  for (const auto& [name, content] : {std::pair<std::string, std::string>{"ca.pem", root},
                                      {"key.pem", KeyPem()}}) {
    std::FILE* file = std::fopen((dir + "/" + name).c_str(), "w");
    ASSERT_NE(file, nullptr);
    std::fputs(content.c_str(), file);
    std::fclose(file);
  }
  absl::StatusOr<std::string> ca = ReadCaBundleFile(dir + "/ca.pem");
  ASSERT_TRUE(ca.ok()) << ca.status();
  EXPECT_EQ(*ca, root);
  EXPECT_THAT(ReadCaBundleFile(dir + "/key.pem").status().message(), HasSubstr("PRIVATE KEY"));
  EXPECT_EQ(ReadCaBundleFile(dir + "/absent.pem").status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(ReadCaBundleFile("/dev/zero").status().message(), HasSubstr("larger than 1 MiB"));
}

}  // namespace
}  // namespace mailroom::crypto
