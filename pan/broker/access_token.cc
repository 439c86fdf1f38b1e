#include "pan/broker/access_token.h"

#include <openssl/sha.h>

#include "absl/strings/escaping.h"

namespace mailroom::broker {

std::string TokenFingerprint(absl::string_view token) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(token.data()), token.size(), digest);
  return absl::BytesToHexString(
             absl::string_view(reinterpret_cast<const char*>(digest), sizeof(digest)));
}

}  // namespace mailroom::broker
