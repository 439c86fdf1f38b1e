#include "common/rpc/status_grpc.h"

#include <regex>
#include <string>

#include "absl/strings/cord.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/base/diagnosis.h"

namespace mailroom {
namespace {

namespace cv1 = ::mailroom::common::v1;
constexpr char kReasonUrl[] = "type.mailroom/error-reason";
constexpr char kLeaderAddressUrl[] = "type.mailroom/leader-address";
constexpr char kErrorDetailsUrl[] = "type.googleapis.com/mailroom.common.v1.ErrorDetails";

// A text payload of an absl::Status (a reason, a leader address), "" when absent.
absl::Status WithText(absl::Status status, const char* url, absl::string_view text) {
  status.SetPayload(url, absl::Cord(text));
  return status;
}

std::string TextOf(const absl::Status& status, const char* url) {
  absl::optional<absl::Cord> payload = status.GetPayload(url);
  return payload.has_value() ? std::string(*payload) : "";
}

}  // namespace

absl::Status WithReason(absl::Status status, absl::string_view reason) {
  return WithText(std::move(status), kReasonUrl, reason);
}

std::string ReasonOf(const absl::Status& status) { return TextOf(status, kReasonUrl); }

absl::Status WithLeaderAddress(absl::Status status, absl::string_view leader_address) {
  return WithText(std::move(status), kLeaderAddressUrl, leader_address);
}

std::string LeaderAddressOf(const absl::Status& status) {
  return TextOf(status, kLeaderAddressUrl);
}

cv1::ErrorDetails ErrorDetailsOf(const absl::Status& status) {
  cv1::ErrorDetails details;
  details.set_reason(ReasonOf(status));
  details.set_leader_address(LeaderAddressOf(status));
  if (absl::optional<Diagnosis> diagnosis = DiagnosisOf(status); diagnosis.has_value()) {
    *details.mutable_diagnosis() = *diagnosis;
    if (diagnosis->has_retry_after()) *details.mutable_retry_after() = diagnosis->retry_after();
  }
  if (status.code() == absl::StatusCode::kInvalidArgument) {
    if (details.reason().empty()) details.set_reason("INVALID_FIELD");
    // Messages name fields as "path: problem", several joined by "; " or newlines.
    static const std::regex kViolation(R"(^\s*([A-Za-z_][A-Za-z0-9_]*(?:\[[0-9]+\])?(?:\.[A-Za-z_][A-Za-z0-9_]*(?:\[[0-9]+\])?)*): (.+)$)");
    for (absl::string_view part : absl::StrSplit(status.message(), absl::ByAnyChar(";\n"))) {
      std::string text(absl::StripAsciiWhitespace(part));
      std::smatch match;
      if (std::regex_match(text, match, kViolation)) {
        cv1::FieldViolation* violation = details.add_field_violations();
        violation->set_field(match[1]);
        violation->set_description(match[2]);
      }
    }
  }
  return details;
}

// absl::StatusCode and grpc::StatusCode share the canonical numbering 0..16.
grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  cv1::RpcStatus rpc_status;
  rpc_status.set_code(static_cast<int>(status.code()));
  rpc_status.set_message(std::string(status.message()));
  google::protobuf::Any* any = rpc_status.add_details();
  any->set_type_url(kErrorDetailsUrl);
  any->set_value(ErrorDetailsOf(status).SerializeAsString());
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      std::string(status.message()), rpc_status.SerializeAsString());
}

absl::Status FromGrpcStatus(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  absl::Status out(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
  cv1::RpcStatus rpc_status;
  if (status.error_details().empty() || !rpc_status.ParseFromString(status.error_details())) {
    return out;
  }
  for (const google::protobuf::Any& any : rpc_status.details()) {
    cv1::ErrorDetails details;
    if (any.type_url() != kErrorDetailsUrl || !details.ParseFromString(any.value())) continue;
    if (!details.reason().empty()) out = WithReason(std::move(out), details.reason());
    if (!details.leader_address().empty()) {
      out = WithLeaderAddress(std::move(out), details.leader_address());
    }
    if (details.has_diagnosis()) out = WithDiagnosis(std::move(out), details.diagnosis());
  }
  return out;
}

}  // namespace mailroom
