#include "common/crypto/ca_bundle.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/crypto/openssl_util.h"

namespace mailroom::crypto {

absl::StatusOr<std::string> CaCertificatesOnly(absl::string_view pem) {
  if (pem.size() > kMaxCaBundleBytes) {
    return absl::InvalidArgumentError("is larger than 1 MiB: a trust store is CA certificates");
  }
  BioPtr in = MemoryBio(pem);
  BioPtr out(BIO_new(BIO_s_mem()));
  if (in == nullptr || out == nullptr) return absl::ResourceExhaustedError("out of memory");
  ERR_clear_error();
  int blocks = 0;
  while (true) {
    char* raw_name = nullptr;
    char* raw_header = nullptr;
    unsigned char* raw_data = nullptr;
    long length = 0;
    if (PEM_read_bio(in.get(), &raw_name, &raw_header, &raw_data, &length) != 1) {
      const unsigned long error = ERR_peek_last_error();
      ERR_clear_error();
      if (ERR_GET_LIB(error) == ERR_LIB_PEM && ERR_GET_REASON(error) == PEM_R_NO_START_LINE) {
        break;  // no further block: the end of the bundle
      }
      return absl::InvalidArgumentError(
          absl::StrCat("PEM block ", blocks + 1, " is malformed (no END line, or bad base64)"));
    }
    OpenSslBuffer<char> name(raw_name);
    OpenSslBuffer<char> header(raw_header);
    OpenSslBuffer<unsigned char> data(raw_data);
    ++blocks;
    if (std::strcmp(name.get(), "CERTIFICATE") != 0 || header.get()[0] != '\0') {
      return absl::InvalidArgumentError(
          absl::StrCat("PEM block ", blocks, " is a \"", name.get(),
                       "\", not a CERTIFICATE: a trust store holds CA certificates only"));
    }
    const unsigned char* cursor = data.get();
    X509Ptr certificate(d2i_X509(nullptr, &cursor, length));
    if (certificate == nullptr || cursor != data.get() + length) {
      ERR_clear_error();
      return absl::InvalidArgumentError(
          absl::StrCat("certificate ", blocks, " does not parse as X.509"));
    }
    if (X509_check_ca(certificate.get()) == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("certificate ", blocks, " (", CertificateSubject(certificate.get()),
                       ") is not a CA certificate: name the CA that issued the server's "
                       "certificate, not the server's own"));
    }
    if (PEM_write_bio_X509(out.get(), certificate.get()) != 1) {
      return absl::ResourceExhaustedError("out of memory");
    }
  }
  if (blocks == 0) {
    return absl::InvalidArgumentError(
        "holds no PEM certificate: a trust store is one or more CA certificates, PEM");
  }
  char* bytes = nullptr;
  const long size = BIO_get_mem_data(out.get(), &bytes);
  return std::string(bytes, static_cast<size_t>(size));
}

absl::StatusOr<std::string> ReadCaBundleFile(const std::string& path) {
  std::FILE* file = std::fopen(path.c_str(), "rbe");
  if (file == nullptr) {
    return absl::NotFoundError(absl::StrCat("cannot read ", path, ": ", std::strerror(errno)));
  }
  std::string content(kMaxCaBundleBytes + 1, '\0');
  const size_t size = std::fread(content.data(), 1, content.size(), file);
  const bool failed = std::ferror(file) != 0;
  std::fclose(file);
  if (failed) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  content.resize(size);
  return CaCertificatesOnly(content);
}

}  // namespace mailroom::crypto
