// Provides the conversions between absl time types and protobuf's Duration / Timestamp,
// used wherever an API message carries a time. Stateless and thread-safe.
#ifndef MAILROOM_COMMON_PROTO_TIME_H_
#define MAILROOM_COMMON_PROTO_TIME_H_

#include "absl/time/time.h"
#include "google/protobuf/duration.pb.h"
#include "google/protobuf/timestamp.pb.h"

namespace mailroom {

void ToProto(absl::Duration duration, google::protobuf::Duration* out);
void ToProto(absl::Time time, google::protobuf::Timestamp* out);
absl::Duration FromProto(const google::protobuf::Duration& duration);
absl::Time FromProto(const google::protobuf::Timestamp& time);
// An unset (zero) duration means "the default": `fallback`.
absl::Duration FromProtoOr(const google::protobuf::Duration& duration, absl::Duration fallback);

}  // namespace mailroom

#endif  // MAILROOM_COMMON_PROTO_TIME_H_
