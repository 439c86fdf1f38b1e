// Provides CaCertificatesOnly: the check that a trust store (a PEM bundle an admin names by
// path or pastes) holds X.509 CA certificates and nothing else, and its canonical re-encoding
// that carries only those certificates. The broker forwards trust stores to every role node,
// so a file that is a private key, a service-account token or anything else must never pass
// as one. Stateless and thread-safe.
#ifndef MAILROOM_COMMON_CRYPTO_CA_BUNDLE_H_
#define MAILROOM_COMMON_CRYPTO_CA_BUNDLE_H_

#include <cstddef>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace mailroom::crypto {

inline constexpr size_t kMaxCaBundleBytes = 1 << 20;

// The CA certificates of `pem`, each re-encoded as a PEM "CERTIFICATE" block, concatenated.
// Text outside PEM blocks (comments, as in Debian's bundles) is dropped. INVALID_ARGUMENT
// saying what is wrong when `pem` is larger than kMaxCaBundleBytes, holds no certificate,
// holds a PEM block of another kind (a key, a request, ...) or a malformed one, or holds a
// certificate that does not parse or is not a CA (basicConstraints CA:TRUE, or a v1 self-
// signed root, as OpenSSL's X509_check_ca decides).
absl::StatusOr<std::string> CaCertificatesOnly(absl::string_view pem);

// CaCertificatesOnly of the file at `path`, read up to kMaxCaBundleBytes + 1 bytes (so that
// /dev/zero or a huge file is refused, not read). NOT_FOUND when it cannot be read.
absl::StatusOr<std::string> ReadCaBundleFile(const std::string& path);

}  // namespace mailroom::crypto

#endif  // MAILROOM_COMMON_CRYPTO_CA_BUNDLE_H_
