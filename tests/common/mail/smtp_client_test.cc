// SmtpSession's checks that need no server: the test-only plaintext mode never takes a token,
// bad envelopes and trust settings fail with a Diagnosis before any connection, and a token is
// registered for redaction as soon as it is set. (Everything with a server is in
// tests/e2e/smtp_client_e2e_test.cc, against the real testbed.)
#include "common/mail/smtp_client.h"

#include <string>
#include <vector>

#include "common/base/redactor.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mailroom {
namespace {

namespace fc = ::mailroom::common::v1;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

// A host in the reserved .invalid domain: nothing is ever reached (the checks below happen
// before any connection).
SmtpEndpoint Nowhere() {
  SmtpEndpoint endpoint;
  endpoint.host = "smtp.invalid";
  endpoint.port = 9;
  endpoint.connect_timeout = absl::Seconds(1);
  return endpoint;
}

TEST(SmtpSession, PlaintextTestModeRefusesATokenBeforeConnecting) {
  SmtpEndpoint endpoint = Nowhere();
  endpoint.allow_plaintext_for_tests = true;
  SmtpSession session(endpoint, "noreply@example.test");
  session.SetBearerToken("eyJ0eXAiOiJKV1QifQ.plaintext-test-token");
  absl::StatusOr<ConnectReport> report = session.Connect();
  ASSERT_FALSE(report.ok());
  EXPECT_EQ(report.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(report.status().message(), HasSubstr("never sent without TLS"));
  absl::optional<Diagnosis> diagnosis = DiagnosisOf(report.status());
  ASSERT_TRUE(diagnosis.has_value());
  EXPECT_EQ(diagnosis->cause(), fc::FAILURE_CAUSE_STARTTLS_UNAVAILABLE);
  EXPECT_EQ(diagnosis->endpoint(), "smtp://smtp.invalid:9");

  const SendResult sent = session.Send("noreply@example.test", {"guest@example.test"}, "x\r\n");
  EXPECT_FALSE(sent.ok);
  EXPECT_EQ(sent.diagnosis.cause(), fc::FAILURE_CAUSE_STARTTLS_UNAVAILABLE);
  EXPECT_EQ(sent.outcome, DeliveryOutcome::kPermanent);
  EXPECT_THAT(session.Transcript(), IsEmpty());

  // Without the token the same session may talk (here it cannot reach the host).
  session.SetBearerToken("");
  const SendResult plain = session.Send("noreply@example.test", {"guest@example.test"}, "x\r\n");
  EXPECT_NE(plain.diagnosis.cause(), fc::FAILURE_CAUSE_STARTTLS_UNAVAILABLE);
  EXPECT_THAT(session.Transcript(), Not(IsEmpty()));
}

TEST(SmtpSession, BadEnvelopesFailWithoutConnecting) {
  SmtpSession session(Nowhere(), "noreply@example.test");
  const std::vector<std::pair<std::string, std::vector<std::string>>> envelopes = {
      {"noreply@example.test", {}},
      {"noreply@example.test", {""}},
      {"noreply@example.test", {"guest@example.test\r\nRCPT TO:<x@evil.test>"}},
      {"noreply@example.test", {"<guest@example.test>"}},
      {"noreply@example.test>\r\nRSET", {"guest@example.test"}},
  };
  for (const auto& [from, recipients] : envelopes) {
    SCOPED_TRACE(from);
    const SendResult sent = session.Send(from, recipients, "Subject: x\r\n\r\nx\r\n");
    EXPECT_FALSE(sent.ok);
    EXPECT_EQ(sent.diagnosis.cause(), fc::FAILURE_CAUSE_UNKNOWN);
    EXPECT_EQ(sent.outcome, DeliveryOutcome::kPermanent);
    EXPECT_EQ(sent.diagnosis.endpoint(), "smtp://smtp.invalid:9");
    EXPECT_THAT(session.Transcript(), IsEmpty());
  }
}

TEST(SmtpSession, TrustSettingsAreCheckedFirst) {
  SmtpEndpoint no_anchors = Nowhere();
  no_anchors.use_system_roots = false;
  SmtpSession session(no_anchors, "noreply@example.test");
  absl::StatusOr<ConnectReport> report = session.Connect();
  ASSERT_FALSE(report.ok());
  EXPECT_THAT(report.status().message(), HasSubstr("no trust anchors"));
  EXPECT_EQ(DiagnosisOf(report.status())->cause(), fc::FAILURE_CAUSE_UNTRUSTED_CERTIFICATE_CHAIN);

  SmtpEndpoint missing_file = Nowhere();
  missing_file.ca_file = "/nonexistent/ca.pem";
  SmtpSession other(missing_file, "noreply@example.test");
  const SendResult sent = other.Send("noreply@example.test", {"guest@example.test"}, "x\r\n");
  EXPECT_FALSE(sent.ok);
  EXPECT_THAT(sent.diagnosis.raw_reply(), HasSubstr("/nonexistent/ca.pem"));
  EXPECT_EQ(sent.diagnosis.cause(), fc::FAILURE_CAUSE_UNTRUSTED_CERTIFICATE_CHAIN);
}

TEST(SmtpSession, TokenIsRegisteredForRedactionWhenSet) {
  const std::string token = "EwBwA8l6BAAUbDba3x2OMJElkF7gJ4z/VbCPEz0AAe+opaque-token-value";
  SmtpSession session(Nowhere(), "noreply@example.test");
  session.SetBearerToken(token);
  const std::string redacted = Redactor::Global().Redact(absl::StrCat("token ", token, " end"));
  EXPECT_EQ(redacted, "token [REDACTED] end");
}

}  // namespace
}  // namespace mailroom
