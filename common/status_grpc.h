// Provides the one conversion between absl::Status (used everywhere inside mailroom) and
// grpc::Status (used only at the RPC edge). Stateless and thread-safe.
#ifndef MAILROOM_COMMON_STATUS_GRPC_H_
#define MAILROOM_COMMON_STATUS_GRPC_H_

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace mailroom {

// Codes map one to one; the message is kept.
grpc::Status ToGrpcStatus(const absl::Status& status);
absl::Status FromGrpcStatus(const grpc::Status& status);

}  // namespace mailroom

#endif  // MAILROOM_COMMON_STATUS_GRPC_H_
