// Tests GraphMailClient and the classification of Graph's answers over recorded bodies.
#include "common/mail/graph_client.h"

#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "common/base/proto_time.h"
#include "common/base/redactor.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/fake_clock.h"
#include "tests/testing/fake_http_transport.h"

namespace mailroom {
namespace {

namespace fc = ::mailroom::common::v1;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;

constexpr char kEndpoint[] = "https://graph.test/v1.0/users/noreply%40example.test/sendMail";
constexpr char kMessage[] =
    "From: noreply@example.test\r\nTo: Guest <guest@example.test>\r\nSubject: hi\r\n"
    "Message-ID: <01ABC@example.test>\r\n\r\nbody\r\n";

HttpResponse Answer(int status, std::string body, std::string retry_after = "") {
  HttpResponse response;
  response.status = status;
  response.body = std::move(body);
  response.retry_after = std::move(retry_after);
  return response;
}

std::string GraphError(const std::string& code, const std::string& message) {
  return "{\"error\":{\"code\":\"" + code + "\",\"message\":\"" + message +
         "\",\"innerError\":{\"request-id\":\"5e0b\"}}}";
}

Diagnosis Classify(const HttpResponse& response) {
  return ClassifyGraphResponse(response, kEndpoint, absl::FromUnixSeconds(1'800'000'000));
}

TEST(GraphSendMailUrl, EncodesTheMailboxAsOnePathSegment) {
  EXPECT_EQ(GraphSendMailUrl("https://graph.microsoft.com/", "noreply@example.test"),
            "https://graph.microsoft.com/v1.0/users/noreply%40example.test/sendMail");
  EXPECT_EQ(GraphSendMailUrl("https://graph.test", "a/b@example.test"),
            "https://graph.test/v1.0/users/a%2Fb%40example.test/sendMail");
}

TEST(ClassifyGraphResponse, AcceptedIsNoFailure) {
  const Diagnosis diagnosis = Classify(Answer(202, ""));
  EXPECT_EQ(diagnosis.cause(), fc::FAILURE_CAUSE_UNSPECIFIED);
  EXPECT_EQ(OutcomeOf(diagnosis), DeliveryOutcome::kDelivered);
}

struct Case {
  int status;
  std::string code;
  std::string message;
  FailureCause cause;
  DeliveryOutcome outcome;
};

TEST(ClassifyGraphResponse, NamesEachDocumentedError) {
  const std::vector<Case> cases = {
      {401, "InvalidAuthenticationToken", "Access token has expired or is not yet valid.",
       fc::FAILURE_CAUSE_GRAPH_TOKEN_REJECTED, DeliveryOutcome::kAuthRejected},
      {401, "", "", fc::FAILURE_CAUSE_GRAPH_TOKEN_REJECTED, DeliveryOutcome::kAuthRejected},
      {403, "ErrorAccessDenied", "Access is denied. Check credentials and try again.",
       fc::FAILURE_CAUSE_GRAPH_MAIL_SEND_NOT_GRANTED, DeliveryOutcome::kPermanent},
      {403, "AccessDenied", "Either scp or roles claim need to be present in the token.",
       fc::FAILURE_CAUSE_GRAPH_MAIL_SEND_NOT_GRANTED, DeliveryOutcome::kPermanent},
      {403, "ErrorAccessDenied",
       "Access to OData is disabled: [RAOP] : Blocked by tenant configured AppOnly "
       "AccessPolicy settings.",
       fc::FAILURE_CAUSE_GRAPH_APPLICATION_ACCESS_POLICY, DeliveryOutcome::kPermanent},
      {403, "ErrorSendAsDenied", "The user account which was used to submit this request does "
       "not have the right to send mail on behalf of the specified sending account.",
       fc::FAILURE_CAUSE_GRAPH_SEND_AS_DENIED, DeliveryOutcome::kPermanent},
      {404, "MailboxNotEnabledForRESTAPI", "The mailbox is either inactive, soft-deleted, or "
       "is hosted on-premise.",
       fc::FAILURE_CAUSE_GRAPH_MAILBOX_NOT_ENABLED, DeliveryOutcome::kPermanent},
      {404, "ResourceNotFound", "Resource could not be discovered.",
       fc::FAILURE_CAUSE_GRAPH_MAILBOX_NOT_FOUND, DeliveryOutcome::kPermanent},
      {404, "ErrorInvalidUser", "The requested user 'x@example.test' is invalid.",
       fc::FAILURE_CAUSE_GRAPH_MAILBOX_NOT_FOUND, DeliveryOutcome::kPermanent},
      {403, "ErrorQuotaExceeded", "The sender's submission quota was exceeded.",
       fc::FAILURE_CAUSE_SUBMISSION_QUOTA_EXCEEDED, DeliveryOutcome::kQuotaExceeded},
      {413, "", "", fc::FAILURE_CAUSE_MESSAGE_TOO_LARGE, DeliveryOutcome::kPermanent},
      {400, "ErrorMimeContentInvalidBase64String", "Invalid base64 string for MIME content.",
       fc::FAILURE_CAUSE_GRAPH_REQUEST_REJECTED, DeliveryOutcome::kPermanent},
      {500, "generalException", "An unknown error has occurred.",
       fc::FAILURE_CAUSE_GRAPH_SERVICE_ERROR, DeliveryOutcome::kTransient},
      {504, "", "", fc::FAILURE_CAUSE_GRAPH_SERVICE_ERROR, DeliveryOutcome::kTransient},
      {503, "ServiceNotAvailable", "", fc::FAILURE_CAUSE_GRAPH_THROTTLED,
       DeliveryOutcome::kTransient},
      {429, "ApplicationThrottled", "Application is over its MailboxConcurrency limit.",
       fc::FAILURE_CAUSE_GRAPH_THROTTLED, DeliveryOutcome::kTransient},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(::testing::Message() << c.status << " " << c.code);
    const std::string body = c.code.empty() ? "" : GraphError(c.code, c.message);
    const Diagnosis diagnosis = Classify(Answer(c.status, body));
    EXPECT_EQ(diagnosis.cause(), c.cause);
    EXPECT_EQ(OutcomeOf(diagnosis), c.outcome);
    EXPECT_EQ(diagnosis.http_status(), c.status);
    EXPECT_EQ(diagnosis.endpoint(), kEndpoint);
    EXPECT_EQ(diagnosis.raw_reply(), body);
    EXPECT_FALSE(diagnosis.fix().empty());
    if (!c.code.empty()) {
      EXPECT_THAT(diagnosis.codes(), ElementsAre(c.code));
    }
  }
}

TEST(ClassifyGraphResponse, ThrottlingCarriesRetryAfter) {
  const Diagnosis diagnosis =
      Classify(Answer(429, GraphError("ApplicationThrottled", "slow down"), "17"));
  EXPECT_EQ(FromProto(diagnosis.retry_after()), absl::Seconds(17));
  EXPECT_TRUE(diagnosis.retryable());
  EXPECT_FALSE(Classify(Answer(503, "", "")).has_retry_after());
}

TEST(ClassifyGraphResponse, ANonJsonBodyIsClassifiedByStatus) {
  const Diagnosis diagnosis = Classify(Answer(403, "<html>Forbidden</html>"));
  EXPECT_EQ(diagnosis.cause(), fc::FAILURE_CAUSE_GRAPH_MAIL_SEND_NOT_GRANTED);
  EXPECT_EQ(diagnosis.codes_size(), 0);
}

TEST(WithBccForEnvelope, AddsOnlyRecipientsTheHeadersDoNotName) {
  EXPECT_EQ(WithBccForEnvelope(kMessage, {"Guest@Example.test"}), kMessage);
  const std::string with_bcc =
      WithBccForEnvelope(kMessage, {"guest@example.test", "sponsor@example.test"});
  EXPECT_EQ(with_bcc, std::string("Bcc: sponsor@example.test\r\n") + kMessage);
  // A folded Cc counts; the body does not.
  const std::string folded =
      "From: a@example.test\r\nTo: b@example.test,\r\n c@example.test\r\n\r\nd@example.test\r\n";
  EXPECT_EQ(WithBccForEnvelope(folded, {"c@example.test", "d@example.test"}),
            "Bcc: d@example.test\r\n" + folded);
}

class GraphMailClientTest : public ::testing::Test {
 protected:
  GraphMailClient MakeClient() {
    GraphEndpoint endpoint;
    endpoint.base_url = "https://graph.test";
    endpoint.request_timeout = absl::Seconds(20);
    return GraphMailClient(&transport_, &clock_, endpoint, "noreply@example.test");
  }

  testing::FakeHttpTransport transport_;
  FakeClock clock_;
};

TEST_F(GraphMailClientTest, PostsTheMimeMessageBase64EncodedWithTheBearerToken) {
  GraphMailClient client = MakeClient();
  client.SetBearerToken("graph-token-0123456789");
  transport_.Enqueue(Answer(202, ""));
  const SendResult sent = client.Send({"guest@example.test"}, kMessage, absl::Seconds(5));
  EXPECT_TRUE(sent.ok);
  EXPECT_EQ(sent.outcome, DeliveryOutcome::kDelivered);
  EXPECT_EQ(sent.reply.code, 202);
  ASSERT_EQ(sent.recipients.size(), 1u);
  EXPECT_TRUE(sent.recipients[0].accepted);

  ASSERT_EQ(transport_.request_count(), 1);
  const HttpRequest request = transport_.requests()[0];
  EXPECT_EQ(request.url, kEndpoint);
  EXPECT_EQ(request.timeout, absl::Seconds(5));
  EXPECT_THAT(request.headers,
              ElementsAre(Pair("Content-Type", "text/plain"),
                          Pair("Authorization", "Bearer graph-token-0123456789")));
  std::string decoded;
  ASSERT_TRUE(absl::Base64Unescape(request.form_body, &decoded));
  EXPECT_EQ(decoded, kMessage);
  // The token is registered with the redactor before it is sent.
  EXPECT_THAT(Redactor::Global().Redact("x graph-token-0123456789 y"), HasSubstr("[REDACTED]"));
}

TEST_F(GraphMailClientTest, ARefusalIsDiagnosedAndNoRecipientAccepted) {
  GraphMailClient client = MakeClient();
  client.SetBearerToken("graph-token-0123456789");
  transport_.Enqueue(Answer(404, GraphError("MailboxNotEnabledForRESTAPI", "inactive")));
  const SendResult sent = client.Send({"guest@example.test"}, kMessage);
  EXPECT_FALSE(sent.ok);
  EXPECT_EQ(sent.outcome, DeliveryOutcome::kPermanent);
  EXPECT_EQ(sent.diagnosis.cause(), fc::FAILURE_CAUSE_GRAPH_MAILBOX_NOT_ENABLED);
  EXPECT_EQ(sent.reply.code, 404);
  EXPECT_THAT(sent.reply.raw, HasSubstr("MailboxNotEnabledForRESTAPI"));
  EXPECT_FALSE(sent.recipients[0].accepted);
  EXPECT_EQ(transport_.requests()[0].timeout, absl::Seconds(20));
}

TEST_F(GraphMailClientTest, NoAnswerAfterSendingIsRetried) {
  GraphMailClient client = MakeClient();
  transport_.Enqueue(WithTransportFailure(absl::DeadlineExceededError("timed out"),
                                          TransportFailure::kTimeout));
  const SendResult sent = client.Send({"guest@example.test"}, kMessage);
  EXPECT_FALSE(sent.ok);
  EXPECT_EQ(sent.outcome, DeliveryOutcome::kTransient);
  EXPECT_EQ(sent.diagnosis.cause(), fc::FAILURE_CAUSE_CONNECT_TIMEOUT);
  EXPECT_EQ(sent.diagnosis.endpoint(), kEndpoint);
  EXPECT_EQ(sent.reply.code, 0);
}

}  // namespace
}  // namespace mailroom
