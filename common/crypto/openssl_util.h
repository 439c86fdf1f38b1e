// Owning handles for OpenSSL objects and the few PEM/X.509 helpers several modules need:
// reading one PEM certificate, its subject line, and the reason for the last OpenSSL error.
// One definition each, so every caller frees with the right function on every path.
//
// Thread-safety: the handles are plain values (not shared); the free functions touch only
// their arguments and this thread's OpenSSL error queue, and are safe to call concurrently.
#ifndef MAILROOM_COMMON_CRYPTO_OPENSSL_UTIL_H_
#define MAILROOM_COMMON_CRYPTO_OPENSSL_UTIL_H_

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace mailroom::crypto {

namespace openssl_internal {
// Frees a T with OpenSSL's own function for it (BIO_free, X509_free, ...).
template <typename T, auto kFree>
struct FreeWith {
  void operator()(T* object) const { kFree(object); }
};
// OPENSSL_free is a macro (it passes the call site), not a function to name above.
struct OpenSslFree {
  void operator()(void* memory) const { OPENSSL_free(memory); }
};
}  // namespace openssl_internal

// An owning handle that frees its T with `kFree`.
template <typename T, auto kFree>
using OpenSslPtr = std::unique_ptr<T, openssl_internal::FreeWith<T, kFree>>;
using BioPtr = OpenSslPtr<BIO, &BIO_free>;
using X509Ptr = OpenSslPtr<X509, &X509_free>;
using EvpPkeyPtr = OpenSslPtr<EVP_PKEY, &EVP_PKEY_free>;
using EvpMdCtxPtr = OpenSslPtr<EVP_MD_CTX, &EVP_MD_CTX_free>;
using EvpCipherCtxPtr = OpenSslPtr<EVP_CIPHER_CTX, &EVP_CIPHER_CTX_free>;
// Memory OpenSSL allocated for the caller (X509_NAME_oneline, i2d_*, PEM_read_bio's outputs).
template <typename T>
using OpenSslBuffer = std::unique_ptr<T, openssl_internal::OpenSslFree>;

// A pem_password_cb that refuses, so an encrypted PEM fails instead of prompting on a tty.
int RefusePassphrase(char* buffer, int size, int rwflag, void* user_data);

// A read-only memory BIO over `data`, which must outlive it. Null only when out of memory.
BioPtr MemoryBio(absl::string_view data);

// Empties this thread's OpenSSL error queue (so a stale error cannot confuse a later TLS call)
// and returns the first reason as "; openssl: <reason>", or "" when the queue was empty.
std::string TakeOpenSslError();

// The first PEM certificate in `pem`. A passphrase prompt is refused rather than asked on a
// tty. InvalidArgument (with OpenSSL's reason) when there is none.
absl::StatusOr<X509Ptr> ReadPemCertificate(absl::string_view pem);

// The certificate's subject in OpenSSL's one-line form ("/CN=.../O=..."); "" if it has none.
std::string CertificateSubject(const X509* certificate);

}  // namespace mailroom::crypto

#endif  // MAILROOM_COMMON_CRYPTO_OPENSSL_UTIL_H_
