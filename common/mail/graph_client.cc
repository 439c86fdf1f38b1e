#include "common/mail/graph_client.h"

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/base/proto_time.h"
#include "common/base/redactor.h"
#include "common/base/url_encode.h"
#include "common/rpc/http_transport.h"
#include "common/mail/graph_error.pb.h"
#include "google/protobuf/util/json_util.h"

namespace mailroom {
namespace {

namespace fc = ::mailroom::common::v1;

// Graph error codes that name their cause whatever the HTTP status.
struct CodeCause {
  const char* code;
  FailureCause cause;
};
constexpr CodeCause kCodeCauses[] = {
    {"ErrorSendAsDenied", fc::FAILURE_CAUSE_GRAPH_SEND_AS_DENIED},
    {"MailboxNotEnabledForRESTAPI", fc::FAILURE_CAUSE_GRAPH_MAILBOX_NOT_ENABLED},
    {"ResourceNotFound", fc::FAILURE_CAUSE_GRAPH_MAILBOX_NOT_FOUND},
    {"ErrorInvalidUser", fc::FAILURE_CAUSE_GRAPH_MAILBOX_NOT_FOUND},
    {"ErrorQuotaExceeded", fc::FAILURE_CAUSE_SUBMISSION_QUOTA_EXCEEDED},
    {"ErrorSubmissionQuotaExceeded", fc::FAILURE_CAUSE_SUBMISSION_QUOTA_EXCEEDED},
    {"ErrorMessageSizeExceeded", fc::FAILURE_CAUSE_MESSAGE_TOO_LARGE},
    {"InvalidAuthenticationToken", fc::FAILURE_CAUSE_GRAPH_TOKEN_REJECTED},
};

// Graph refuses an app that an application access policy (or RBAC for Applications) keeps
// from the mailbox with an ErrorAccessDenied whose only distinction is its text ("Access to
// OData is disabled: [RAOP] : Blocked by tenant configured AppOnly AccessPolicy settings.").
bool NamesAccessPolicy(absl::string_view message) {
  return absl::StrContains(message, "RAOP") ||
         absl::StrContains(absl::AsciiStrToLower(message), "accesspolicy");
}

FailureCause CauseOf(int status, const std::string& code, const std::string& message) {
  for (const CodeCause& entry : kCodeCauses) {
    if (code == entry.code) return entry.cause;
  }
  if (status == 429 || status == 503) return fc::FAILURE_CAUSE_GRAPH_THROTTLED;
  if (status == 401) return fc::FAILURE_CAUSE_GRAPH_TOKEN_REJECTED;
  if (status == 403) {
    return NamesAccessPolicy(message) ? fc::FAILURE_CAUSE_GRAPH_APPLICATION_ACCESS_POLICY
                                      : fc::FAILURE_CAUSE_GRAPH_MAIL_SEND_NOT_GRANTED;
  }
  if (status == 404) return fc::FAILURE_CAUSE_GRAPH_MAILBOX_NOT_FOUND;
  if (status == 413) return fc::FAILURE_CAUSE_MESSAGE_TOO_LARGE;
  if (status >= 500) return fc::FAILURE_CAUSE_GRAPH_SERVICE_ERROR;
  return fc::FAILURE_CAUSE_GRAPH_REQUEST_REJECTED;
}

// The addresses of the To and Cc headers of `message`'s header section, lower-cased, as one
// string to search (unfolded; a folded line continues its header).
std::string ToAndCcHeaders(absl::string_view message) {
  const size_t end = message.find("\r\n\r\n");
  absl::string_view headers = message.substr(0, end);
  std::string found;
  bool in_address_header = false;
  for (absl::string_view line : absl::StrSplit(headers, "\r\n")) {
    const bool continuation = !line.empty() && (line[0] == ' ' || line[0] == '\t');
    if (!continuation) {
      in_address_header = absl::StartsWithIgnoreCase(line, "to:") ||
                          absl::StartsWithIgnoreCase(line, "cc:");
    }
    if (in_address_header) absl::StrAppend(&found, absl::AsciiStrToLower(line), "\n");
  }
  return found;
}

}  // namespace

std::string GraphSendMailUrl(absl::string_view base_url, absl::string_view mailbox) {
  return absl::StrCat(absl::StripSuffix(base_url, "/"), "/v1.0/users/", UrlEncode(mailbox),
                      "/sendMail");
}

Diagnosis ClassifyGraphResponse(const HttpResponse& response, absl::string_view endpoint,
                                absl::Time now) {
  Diagnosis diagnosis;
  if (response.status >= 200 && response.status < 300) {
    diagnosis.set_http_status(response.status);
    diagnosis.set_endpoint(std::string(endpoint));
    return diagnosis;
  }
  mail::internal::GraphErrorResponse body;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = true;
  if (!google::protobuf::util::JsonStringToMessage(response.body, &body, options).ok()) {
    body.Clear();  // not Graph's JSON (a proxy's page, an empty body): the status decides
  }
  const FailureCause cause = CauseOf(response.status, body.error().code(), body.error().message());
  diagnosis = MakeDiagnosis(cause);
  SetRawReply(&diagnosis, response.body);
  diagnosis.set_http_status(response.status);
  diagnosis.set_endpoint(std::string(endpoint));
  if (!body.error().code().empty()) diagnosis.add_codes(body.error().code());
  if (cause == fc::FAILURE_CAUSE_GRAPH_THROTTLED) {
    const absl::optional<absl::Duration> wait =
        ParseRetryAfter(response.retry_after, now, kMaxGraphRetryAfter);
    if (wait.has_value()) ToProto(*wait, diagnosis.mutable_retry_after());
  }
  return diagnosis;
}

std::string WithBccForEnvelope(const std::string& message,
                               const std::vector<std::string>& recipients) {
  const std::string to_and_cc = ToAndCcHeaders(message);
  std::vector<std::string> bcc;
  for (const std::string& recipient : recipients) {
    if (!absl::StrContains(to_and_cc, absl::AsciiStrToLower(recipient))) bcc.push_back(recipient);
  }
  if (bcc.empty()) return message;
  return absl::StrCat("Bcc: ", absl::StrJoin(bcc, ",\r\n "), "\r\n", message);
}

GraphMailClient::GraphMailClient(HttpTransport* transport, const Clock* clock,
                                 GraphEndpoint endpoint, std::string mailbox)
    : transport_(transport),
      clock_(clock),
      endpoint_(std::move(endpoint)),
      url_(GraphSendMailUrl(endpoint_.base_url, mailbox)) {}

void GraphMailClient::SetBearerToken(std::string token) {
  if (!token.empty()) Redactor::Global().AddShortLivedSecret(token);
  token_ = std::move(token);
}

SendResult GraphMailClient::Send(const std::vector<std::string>& recipients,
                                 const std::string& rfc5322_bytes, absl::Duration time_limit) {
  const absl::Time start = clock_->Now();
  HttpRequest request;
  request.url = url_;
  request.form_body = absl::Base64Escape(WithBccForEnvelope(rfc5322_bytes, recipients));
  request.headers = {{"Content-Type", "text/plain"}};
  if (!token_.empty()) request.headers.emplace_back("Authorization", "Bearer " + token_);
  request.timeout = std::min(endpoint_.request_timeout, time_limit);

  SendResult result;
  result.new_connection = true;
  const absl::StatusOr<HttpResponse> response = transport_->PostForm(request);
  result.duration = clock_->Now() - start;
  if (!response.ok()) {
    // No answer: the request may or may not have reached Graph; retried either way (see the
    // retry rule in the header).
    result.diagnosis = DiagnoseTransportFailure(response.status());
    result.diagnosis.set_endpoint(url_);
    result.diagnosis.set_retryable(true);
    result.reply.raw = std::string(response.status().message());
    result.reply.text = result.reply.raw;
    result.outcome = OutcomeOf(result.diagnosis);
    for (const std::string& address : recipients) result.recipients.push_back({address, false, {}});
    return result;
  }
  result.diagnosis = ClassifyGraphResponse(*response, url_, clock_->Now());
  result.ok = result.diagnosis.cause() == fc::FAILURE_CAUSE_UNSPECIFIED;
  result.reply.code = response->status;
  result.reply.text = absl::StrCat("HTTP ", response->status,
                                   response->body.empty() ? "" : " ", response->body);
  result.reply.raw = result.reply.text;
  result.outcome = OutcomeOf(result.diagnosis);
  for (const std::string& address : recipients) {
    RecipientResult recipient;
    recipient.address = address;
    recipient.accepted = result.ok;
    recipient.reply = result.reply;
    result.recipients.push_back(std::move(recipient));
  }
  if (result.ok) result.diagnosis.Clear();
  return result;
}

}  // namespace mailroom
