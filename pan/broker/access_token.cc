#include "pan/broker/access_token.h"

#include "common/base/proto_hash.h"

namespace mailroom::broker {

std::string TokenFingerprint(absl::string_view token) { return Sha256Hex(token); }

}  // namespace mailroom::broker
