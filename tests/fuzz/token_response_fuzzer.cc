// Provides the fuzz target of the token endpoint's answer (pan/broker/token_response.h and
// ClassifyTokenResponse in pan/broker/token_client.h). The input is an HTTP answer in brief:
// a first line "<status> [<Retry-After>]" and then the body, e.g.
//   400
//   {"error":"invalid_client","error_codes":[7000215],...}
// Checks that a token taken from a body keeps its documented rules (a value, a lifetime of at
// most kMaxTokenLifetime, a refresh hint inside it), that a parsed body prints to JSON that
// parses the same, and that every classification is a real cause whose Diagnosis keeps the
// HTTP status and survives the Status that carries it.
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/optional.h"
#include "common/base/diagnosis.h"
#include "common/base/utf8.h"
#include "common/rpc/http_transport.h"
#include "google/protobuf/util/json_util.h"
#include "pan/broker/token_client.h"
#include "pan/broker/token_response.h"
#include "tests/fuzz/fuzz_check.h"

namespace mailroom::broker {
namespace {

namespace fc = ::mailroom::common::v1;

const absl::Time kReceived = absl::FromUnixSeconds(1717405965);

void CheckToken(const internal::EntraTokenResponse& body, const std::string& what) {
  const absl::optional<AccessToken> token = AccessTokenFromBody(body, kReceived);
  if (!token.has_value()) return;
  FUZZ_CHECK(!token->value.empty() && token->value == body.access_token(), what);
  FUZZ_CHECK(token->issue_time == kReceived && token->expire_time > kReceived &&
                 token->expire_time - kReceived <= kMaxTokenLifetime,
             absl::StrCat(what, " expires ", absl::FormatTime(token->expire_time)));
  FUZZ_CHECK(token->refresh_hint == absl::InfiniteFuture() ||
                 (token->refresh_hint > kReceived && token->refresh_hint <= token->expire_time),
             absl::StrCat(what, " refresh ", absl::FormatTime(token->refresh_hint)));
  FUZZ_CHECK(token->fingerprint.size() == 64, what);
}

void CheckJsonRoundTrip(const internal::EntraTokenResponse& body, const std::string& what) {
  std::string json;
  FUZZ_CHECK(google::protobuf::util::MessageToJsonString(body, &json).ok(), what);
  const absl::optional<internal::EntraTokenResponse> again = ParseTokenResponseBody(json);
  FUZZ_CHECK(again.has_value() && again->SerializeAsString() == body.SerializeAsString(),
             absl::StrCat(what, " printed as ", QuoteForError(json, 400)));
}

void CheckClassification(const HttpResponse& response, bool certificate,
                         const std::string& what) {
  const Diagnosis diagnosis =
      ClassifyTokenResponse(response, certificate, absl::FromUnixSeconds(1800000000));
  const std::string classified =
      absl::StrCat(what, " -> ", fc::FailureCause_Name(diagnosis.cause()));
  FUZZ_CHECK(diagnosis.cause() != fc::FAILURE_CAUSE_UNSPECIFIED && !diagnosis.title().empty(),
             classified);
  FUZZ_CHECK(diagnosis.http_status() == response.status, classified);
  if (response.status == 429) {
    FUZZ_CHECK(diagnosis.cause() == fc::FAILURE_CAUSE_TOKEN_ENDPOINT_THROTTLED, classified);
  }
  if (diagnosis.cause() == fc::FAILURE_CAUSE_TOKEN_ENDPOINT_THROTTLED) {
    FUZZ_CHECK(diagnosis.has_retry_after() && diagnosis.retry_after().seconds() >= 0,
               classified);
  }
  for (const std::string& code : diagnosis.codes()) FUZZ_CHECK(!code.empty(), classified);
  FUZZ_CHECK(diagnosis.raw_reply().size() <= kMaxRawReplyBytes + 64, classified);
  const absl::optional<Diagnosis> carried = DiagnosisOf(DiagnosedError(diagnosis, "fuzz"));
  FUZZ_CHECK(carried.has_value() &&
                 carried->SerializeAsString() == diagnosis.SerializeAsString(),
             absl::StrCat("the Diagnosis did not survive its Status: ", classified));
  FormatDiagnosis(diagnosis);
}

}  // namespace
}  // namespace mailroom::broker

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ::mailroom;          // NOLINT(build/namespaces): a fuzz entry point
  using namespace ::mailroom::broker;  // NOLINT(build/namespaces)
  const absl::string_view input(reinterpret_cast<const char*>(data), size);
  const size_t newline = input.find('\n');
  const absl::string_view first = input.substr(0, newline);
  HttpResponse response;
  response.body = std::string(newline == absl::string_view::npos ? absl::string_view()
                                                                 : input.substr(newline + 1));
  const size_t space = first.find(' ');
  if (!absl::SimpleAtoi(first.substr(0, space), &response.status)) response.status = 200;
  if (space != absl::string_view::npos) response.retry_after = std::string(first.substr(space + 1));
  response.content_type = "application/json; charset=utf-8";
  const std::string what = absl::StrCat("HTTP ", response.status, " body ",
                                        QuoteForError(response.body, 400));

  const absl::optional<internal::EntraTokenResponse> body =
      ParseTokenResponseBody(response.body);
  if (body.has_value()) {
    CheckToken(*body, what);
    CheckJsonRoundTrip(*body, what);
  }
  CheckClassification(response, false, what);
  CheckClassification(response, true, what);
  return 0;
}
