#include "common/crypto/openssl_util.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mailroom::crypto {
namespace {

using ::testing::HasSubstr;

// A self-signed certificate for `common_name`, PEM, made with the handles under test.
std::string SelfSignedPem(const char* common_name) {
  EvpPkeyPtr key(EVP_RSA_gen(2048));
  EXPECT_NE(key, nullptr);
  X509Ptr certificate(X509_new());
  X509_set_version(certificate.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(certificate.get()), 7);
  X509_gmtime_adj(X509_getm_notBefore(certificate.get()), 0);
  X509_gmtime_adj(X509_getm_notAfter(certificate.get()), 3600);
  X509_NAME* name = X509_get_subject_name(certificate.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(common_name), -1, -1, 0);
  X509_set_issuer_name(certificate.get(), name);
  X509_set_pubkey(certificate.get(), key.get());
  EXPECT_GT(X509_sign(certificate.get(), key.get(), EVP_sha256()), 0);
  BioPtr out(BIO_new(BIO_s_mem()));
  EXPECT_EQ(PEM_write_bio_X509(out.get(), certificate.get()), 1);
  char* data = nullptr;
  const long size = BIO_get_mem_data(out.get(), &data);
  return std::string(data, static_cast<size_t>(size));
}

TEST(OpenSslUtilTest, ReadsACertificateAndItsSubject) {
  absl::StatusOr<X509Ptr> certificate = ReadPemCertificate(SelfSignedPem("smtp.example.test"));
  ASSERT_TRUE(certificate.ok()) << certificate.status();
  EXPECT_EQ(CertificateSubject(certificate->get()), "/CN=smtp.example.test");
}

TEST(OpenSslUtilTest, SomethingElseIsRefusedWithOpenSslsReasonAndAnEmptyQueue) {
  absl::StatusOr<X509Ptr> certificate =
      ReadPemCertificate("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n");
  ASSERT_FALSE(certificate.ok());
  EXPECT_EQ(certificate.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(certificate.status().message(), HasSubstr("is not a PEM certificate; openssl: "));
  EXPECT_EQ(ERR_peek_error(), 0u) << "the reason was taken off the queue";
}

TEST(OpenSslUtilTest, TakeOpenSslErrorIsEmptyWhenNothingFailed) {
  ERR_clear_error();
  EXPECT_EQ(TakeOpenSslError(), "");
}

TEST(OpenSslUtilTest, AnEncryptedPemIsRefusedNotPrompted) {
  char buffer[8];
  EXPECT_EQ(RefusePassphrase(buffer, sizeof(buffer), 0, nullptr), -1);
}

TEST(OpenSslUtilTest, AMemoryBioReadsBackItsBytes) {
  BioPtr bio = MemoryBio("abc");
  ASSERT_NE(bio, nullptr);
  char read[4] = {0};
  EXPECT_EQ(BIO_read(bio.get(), read, 3), 3);
  EXPECT_STREQ(read, "abc");
}

}  // namespace
}  // namespace mailroom::crypto
