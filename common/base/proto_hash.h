// Provides deterministic bytes and SHA-256 digests of protobuf messages and strings, for
// everything mailroom derives from content and must derive the same way in every process
// and after every restart: ids, etags, idempotency fingerprints, page-token filter checks.
// Stateless and thread-safe.
#ifndef MAILROOM_COMMON_BASE_PROTO_HASH_H_
#define MAILROOM_COMMON_BASE_PROTO_HASH_H_

#include <string>

#include "absl/strings/string_view.h"
#include "google/protobuf/message_lite.h"

namespace mailroom {

// The message serialized with deterministic field and map ordering.
std::string DeterministicBytes(const google::protobuf::MessageLite& message);

// The 32-byte SHA-256 digest of `data`.
std::string Sha256(absl::string_view data);

// Lower-case hex SHA-256 of `data` (64 characters).
std::string Sha256Hex(absl::string_view data);

// Lower-case hex SHA-256 of the message's deterministic bytes (64 characters).
std::string ProtoSha256Hex(const google::protobuf::MessageLite& message);

}  // namespace mailroom

#endif  // MAILROOM_COMMON_BASE_PROTO_HASH_H_
