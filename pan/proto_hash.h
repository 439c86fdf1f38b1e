// Provides deterministic bytes and SHA-256 digests of protobuf messages and strings, for
// everything the PAN service derives from content and must derive the same way in every
// process and after every restart: reminder ids, outbox idempotency fingerprints, settings
// etags and page-token filter checks. Stateless and thread-safe.
#ifndef MAILROOM_PAN_PROTO_HASH_H_
#define MAILROOM_PAN_PROTO_HASH_H_

#include <string>

#include "absl/strings/string_view.h"
#include "google/protobuf/message.h"

namespace mailroom::pan {

// The message serialized with deterministic field and map ordering.
std::string DeterministicBytes(const google::protobuf::Message& message);

// Lower-case hex SHA-256 of `data`.
std::string Sha256Hex(absl::string_view data);

}  // namespace mailroom::pan

#endif  // MAILROOM_PAN_PROTO_HASH_H_
