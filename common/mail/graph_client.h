// Provides GraphMailClient, mailroom's Microsoft Graph submission client: it sends an
// already-built MIME message with `POST {base}/v1.0/users/{mailbox}/sendMail`, the message
// base64-encoded with `Content-Type: text/plain` (Graph's "send messages with MIME content"),
// and a bearer token, through HttpTransport (libcurl in production, a fake in tests). Every
// answer but 202 is classified into a Diagnosis (ClassifyGraphResponse) with the same
// DeliveryOutcome vocabulary as SMTP replies, so the outbox treats both transports alike:
//   202 (any 2xx)                          delivered ("handed over": Graph processes it later)
//   401                                    GRAPH_TOKEN_REJECTED → kAuthRejected (fresh token,
//                                          one retry)
//   403 ErrorAccessDenied, no roles claim  GRAPH_MAIL_SEND_NOT_GRANTED
//   403 naming an application access policy (RAOP / AccessPolicy)
//                                          GRAPH_APPLICATION_ACCESS_POLICY
//   ErrorSendAsDenied                      GRAPH_SEND_AS_DENIED
//   MailboxNotEnabledForRESTAPI            GRAPH_MAILBOX_NOT_ENABLED
//   404, ResourceNotFound, ErrorInvalidUser GRAPH_MAILBOX_NOT_FOUND
//   ErrorQuotaExceeded, ErrorSubmissionQuotaExceeded
//                                          SUBMISSION_QUOTA_EXCEEDED → kQuotaExceeded (pause)
//   413, ErrorMessageSizeExceeded          MESSAGE_TOO_LARGE
//   429, 503                               GRAPH_THROTTLED, retried after Retry-After (seconds
//                                          or an HTTP-date; capped at an hour)
//   any other 5xx                          GRAPH_SERVICE_ERROR, retried
//   any other 4xx                          GRAPH_REQUEST_REJECTED, permanent
// Graph's error code goes into Diagnosis.codes, its JSON body into raw_reply.
//
// The retry rule after the request was sent. A 5xx (other than 503, which Graph documents as
// throttling), a timeout, or a connection lost before the answer may or may not have sent the
// message. It is retried, with the outbox's backoff and within its retry lifetime: delivery is
// at-least-once, as with SMTP when the reply to DATA's "." is lost, because dropping a message
// that was maybe not sent loses mail, which mailroom promises never to do. A duplicate is
// recognisable: the Message-ID is fixed at enqueue and Graph keeps it (internetMessageId).
// Not chosen: looking for the Message-ID in Sent Items before retrying, which needs
// Mail.Read (more than Mail.Send) and proves nothing, since Graph saves to Sent Items after
// its 202. A failure before anything was sent (DNS, refused, TLS) is retried the same way.
//
// Recipients: Graph takes them from the MIME headers, not from an envelope, and mailroom's
// messages never carry a Bcc header (common/mail/mime_message.h), so the client adds one
// naming every envelope recipient that To and Cc do not (Graph delivers to Bcc and strips
// the header).
//
// Secrets: SetBearerToken registers the token with Redactor::Global() before it is used, and
// the token is never part of a Diagnosis.
// GraphMailClient is NOT thread-safe (one per delivery connection, like SmtpSession); the free
// functions are stateless and thread-safe.
#ifndef MAILROOM_COMMON_MAIL_GRAPH_CLIENT_H_
#define MAILROOM_COMMON_MAIL_GRAPH_CLIENT_H_

#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/optional.h"
#include "common/base/clock.h"
#include "common/base/diagnosis.h"
#include "common/mail/smtp_client.h"
#include "common/rpc/http_transport.h"

namespace mailroom {

// The Graph endpoint a client sends to.
struct GraphEndpoint {
  // Scheme and host, no trailing slash needed: "https://graph.microsoft.com" (national
  // clouds: "https://graph.microsoft.us", ...; tests: the testbed's).
  std::string base_url = "https://graph.microsoft.com";
  // Upper bound on one request, connecting included.
  absl::Duration request_timeout = absl::Seconds(60);
};

// The longest Retry-After honoured: a server's wait is advice, and a day would hold mail
// long after the throttling ended.
inline constexpr absl::Duration kMaxGraphRetryAfter = absl::Hours(1);

// The sendMail URL for `mailbox` (percent-encoded as one path segment).
std::string GraphSendMailUrl(absl::string_view base_url, absl::string_view mailbox);

// Classifies a Graph answer (see the table above). `now` resolves an HTTP-date Retry-After.
// A 2xx gives cause FAILURE_CAUSE_UNSPECIFIED. `endpoint` is recorded in the Diagnosis.
Diagnosis ClassifyGraphResponse(const HttpResponse& response, absl::string_view endpoint,
                                absl::Time now);

// `message` with a Bcc header naming each of `recipients` that its To and Cc headers do not
// (compared case-insensitively); `message` itself when they all appear.
std::string WithBccForEnvelope(const std::string& message,
                               const std::vector<std::string>& recipients);

class GraphMailClient {
 public:
  // `transport` and `clock` must outlive the client. `mailbox` is the sending mailbox (the
  // {id | userPrincipalName} of the URL).
  GraphMailClient(HttpTransport* transport, const Clock* clock, GraphEndpoint endpoint,
                  std::string mailbox);

  // Sets the bearer token, registering it with Redactor::Global() first.
  void SetBearerToken(std::string token);

  // Submits `rfc5322_bytes` (CRLF line endings) for `recipients`, within `time_limit` (and
  // the endpoint's request_timeout). The result's `reply` holds the HTTP status as its code
  // and "HTTP <status>" plus Graph's body as its text; on 202 every recipient is accepted.
  SendResult Send(const std::vector<std::string>& recipients, const std::string& rfc5322_bytes,
                  absl::Duration time_limit = absl::InfiniteDuration());

  const std::string& url() const { return url_; }

 private:
  HttpTransport* const transport_;
  const Clock* const clock_;
  const GraphEndpoint endpoint_;
  const std::string url_;
  std::string token_;
};

}  // namespace mailroom

#endif  // MAILROOM_COMMON_MAIL_GRAPH_CLIENT_H_
