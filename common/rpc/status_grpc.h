// Provides the one conversion between absl::Status (used everywhere inside mailroom) and
// grpc::Status (used only at the RPC edge). Structured details travel both ways: a
// Diagnosis (common/base/diagnosis.h) and a machine-readable reason (WithReason) are packed as
// mailroom.common.v1.ErrorDetails inside an RpcStatus (wire-compatible with
// google.rpc.Status) in the gRPC error details. Stateless and thread-safe.
#ifndef MAILROOM_COMMON_STATUS_GRPC_H_
#define MAILROOM_COMMON_STATUS_GRPC_H_

#include <string>

#include <grpcpp/support/status.h>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "proto/mailroom/common/v1/common.pb.h"

namespace mailroom {

// Codes map one to one; the message is kept; details are packed.
grpc::Status ToGrpcStatus(const absl::Status& status);
absl::Status FromGrpcStatus(const grpc::Status& status);

// Attaches an ErrorDetails.reason such as "TEST_CONNECTION_REQUIRED".
absl::Status WithReason(absl::Status status, absl::string_view reason);
std::string ReasonOf(const absl::Status& status);

// Attaches ErrorDetails.leader_address (a standby broker's NOT_LEADER answer).
absl::Status WithLeaderAddress(absl::Status status, absl::string_view leader_address);
std::string LeaderAddressOf(const absl::Status& status);

// The ErrorDetails a status would carry on the wire.
mailroom::common::v1::ErrorDetails ErrorDetailsOf(const absl::Status& status);

}  // namespace mailroom

#endif  // MAILROOM_COMMON_STATUS_GRPC_H_
