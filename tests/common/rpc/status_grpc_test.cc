#include "common/rpc/status_grpc.h"

#include "common/base/diagnosis.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mailroom {
namespace {

TEST(StatusGrpc, OkMapsToOk) {
  EXPECT_TRUE(ToGrpcStatus(absl::OkStatus()).ok());
  EXPECT_TRUE(FromGrpcStatus(grpc::Status::OK).ok());
}

TEST(StatusGrpc, EveryCodeAndMessageRoundTrips) {
  for (int code = 1; code <= 16; ++code) {
    SCOPED_TRACE(code);
    const absl::Status status(static_cast<absl::StatusCode>(code), "field to.address: bad");
    const grpc::Status grpc_status = ToGrpcStatus(status);
    EXPECT_EQ(static_cast<int>(grpc_status.error_code()), code);
    EXPECT_EQ(grpc_status.error_message(), "field to.address: bad");
    EXPECT_EQ(FromGrpcStatus(grpc_status).code(), status.code());
    EXPECT_EQ(FromGrpcStatus(grpc_status).message(), status.message());
  }
}

TEST(StatusGrpc, NamedCodesAgree) {
  EXPECT_EQ(ToGrpcStatus(absl::InvalidArgumentError("x")).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(ToGrpcStatus(absl::PermissionDeniedError("x")).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(ToGrpcStatus(absl::UnavailableError("x")).error_code(),
            grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(ToGrpcStatus(absl::UnauthenticatedError("x")).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
}

}  // namespace
}  // namespace mailroom

namespace mailroom {
namespace {

TEST(StatusGrpc, TheLeaderAddressTravelsInTheDetails) {
  const absl::Status status = WithLeaderAddress(
      WithReason(absl::UnavailableError("standby"), "NOT_LEADER"), "pan1.example:7100");
  EXPECT_EQ(ErrorDetailsOf(status).leader_address(), "pan1.example:7100");
  const absl::Status back = FromGrpcStatus(ToGrpcStatus(status));
  EXPECT_EQ(back.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(ReasonOf(back), "NOT_LEADER");
  EXPECT_EQ(LeaderAddressOf(back), "pan1.example:7100");
}

TEST(StatusGrpc, DiagnosisAndReasonTravelInTheDetails) {
  Diagnosis diagnosis =
      MakeDiagnosis(common::v1::FAILURE_CAUSE_INVALID_CLIENT_SECRET, "{\"error\":\"invalid_client\"}");
  absl::Status status = WithReason(DiagnosedError(diagnosis, "HTTP 401"), "TOKEN_UNAVAILABLE");
  const grpc::Status on_the_wire = ToGrpcStatus(status);
  EXPECT_FALSE(on_the_wire.error_details().empty());
  const absl::Status back = FromGrpcStatus(on_the_wire);
  EXPECT_EQ(back.code(), status.code());
  EXPECT_EQ(ReasonOf(back), "TOKEN_UNAVAILABLE");
  ASSERT_TRUE(DiagnosisOf(back).has_value());
  EXPECT_EQ(DiagnosisOf(back)->cause(), common::v1::FAILURE_CAUSE_INVALID_CLIENT_SECRET);
  EXPECT_EQ(DiagnosisOf(back)->title(), "Invalid client secret");
}

TEST(StatusGrpc, InvalidArgumentIsReportedAsInvalidField) {
  const common::v1::ErrorDetails details = ErrorDetailsOf(absl::InvalidArgumentError(
      "to[0].address: invalid domain label \"-x\"; settings.port: must be 1..65535"));
  EXPECT_EQ(details.reason(), "INVALID_FIELD");
  ASSERT_EQ(details.field_violations_size(), 2);
  EXPECT_EQ(details.field_violations(0).field(), "to[0].address");
  EXPECT_EQ(details.field_violations(0).description(), "invalid domain label \"-x\"");
  EXPECT_EQ(details.field_violations(1).field(), "settings.port");
}

}  // namespace
}  // namespace mailroom
