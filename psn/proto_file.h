// Provides how the PSN keeps its small saved state (Guest Email Settings, templates) in its
// data_dir: a protobuf written atomically (temporary file, fsync, rename, fsync of the
// directory), so a crash or kill -9 at any point leaves either the old or the new content,
// never a torn file; and ContentEtag, the content hash used as etag, so equal etags on
// different PSNs mean equal content. Stateless; concurrent writers of one path must be
// serialized by the caller.
#ifndef MAILROOM_PSN_PROTO_FILE_H_
#define MAILROOM_PSN_PROTO_FILE_H_

#include <string>

#include "absl/status/status.h"
#include "common/base/proto_hash.h"  // DeterministicBytes, for the PSN's fingerprints
#include "google/protobuf/message.h"

namespace mailroom::psn {

// Parses the binary protobuf at `path` into `message`. NOT_FOUND if there is no such file;
// DATA_LOSS naming the path if it does not parse; UNAVAILABLE for I/O errors.
absl::Status ReadProtoFile(const std::string& path, google::protobuf::Message* message);

// Replaces `path` with `message` (mode 0600) atomically and durably. UNAVAILABLE naming the
// path on any I/O error, in which case the previous content is unchanged.
absl::Status WriteProtoFileAtomically(const std::string& path,
                                      const google::protobuf::Message& message);

// Hex SHA-256 (first 16 bytes) of the deterministic serialization of `message`.
std::string ContentEtag(const google::protobuf::Message& message);

}  // namespace mailroom::psn

#endif  // MAILROOM_PSN_PROTO_FILE_H_
