#include "common/crypto/openssl_util.h"

#include <openssl/err.h>
#include <openssl/pem.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace mailroom::crypto {
int RefusePassphrase(char*, int, int, void*) { return -1; }

BioPtr MemoryBio(absl::string_view data) {
  return BioPtr(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())));
}

std::string TakeOpenSslError() {
  const unsigned long code = ERR_peek_error();
  ERR_clear_error();
  if (code == 0) return "";
  const char* reason = ERR_reason_error_string(code);
  return absl::StrCat("; openssl: ", reason != nullptr ? reason : "unknown error");
}

absl::StatusOr<X509Ptr> ReadPemCertificate(absl::string_view pem) {
  BioPtr bio = MemoryBio(pem);
  if (bio == nullptr) return absl::ResourceExhaustedError("out of memory");
  X509Ptr certificate(PEM_read_bio_X509(bio.get(), nullptr, RefusePassphrase, nullptr));
  if (certificate == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("is not a PEM certificate", TakeOpenSslError()));
  }
  return certificate;
}

std::string CertificateSubject(const X509* certificate) {
  OpenSslBuffer<char> subject(
      X509_NAME_oneline(X509_get_subject_name(certificate), nullptr, 0));
  return subject != nullptr ? std::string(subject.get()) : std::string();
}

}  // namespace mailroom::crypto
