// SMTP reply parsing and classification over reply texts recorded from Exchange Online (and
// Postfix, which the end-to-end testbed runs): codes select the cause, never the text.
#include "common/mail/smtp_reply.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mailroom {
namespace {

namespace fc = ::mailroom::common::v1;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

TEST(ParseSmtpReply, SingleLineWithEnhancedCode) {
  const SmtpReply reply = ParseSmtpReply(
      "535 5.7.3 Authentication unsuccessful [SN4PR0601CA0001.namprd06.prod.outlook.com]\r\n");
  EXPECT_EQ(reply.code, 535);
  EXPECT_EQ(reply.enhanced_code, "5.7.3");
  EXPECT_EQ(reply.text,
            "5.7.3 Authentication unsuccessful [SN4PR0601CA0001.namprd06.prod.outlook.com]");
  EXPECT_EQ(reply.raw,
            "535 5.7.3 Authentication unsuccessful [SN4PR0601CA0001.namprd06.prod.outlook.com]");
}

TEST(ParseSmtpReply, MultiLineKeepsEveryLine) {
  const SmtpReply reply = ParseSmtpReply(
      "250-SN4PR0601CA0001.outlook.office365.com Hello [203.0.113.7]\r\n"
      "250-SIZE 157286400\r\n"
      "250-PIPELINING\r\n"
      "250-AUTH LOGIN XOAUTH2\r\n"
      "250 SMTPUTF8\r\n");
  EXPECT_EQ(reply.code, 250);
  EXPECT_THAT(reply.enhanced_code, IsEmpty());
  EXPECT_EQ(reply.text,
            "SN4PR0601CA0001.outlook.office365.com Hello [203.0.113.7]\nSIZE 157286400\n"
            "PIPELINING\nAUTH LOGIN XOAUTH2\nSMTPUTF8");
  EXPECT_EQ(reply.raw,
            "250-SN4PR0601CA0001.outlook.office365.com Hello [203.0.113.7]\n250-SIZE 157286400\n"
            "250-PIPELINING\n250-AUTH LOGIN XOAUTH2\n250 SMTPUTF8");
}

TEST(ParseSmtpReply, MultiLineWithEnhancedCodeOnEachLine) {
  const SmtpReply reply = ParseSmtpReply(
      "554-5.2.0 STOREDRV.Submission.Exception:SubmissionQuotaExceededException;\n"
      "554 5.2.0 Failed to process message due to a permanent exception");
  EXPECT_EQ(reply.code, 554);
  EXPECT_EQ(reply.enhanced_code, "5.2.0");
  EXPECT_EQ(reply.text,
            "5.2.0 STOREDRV.Submission.Exception:SubmissionQuotaExceededException;\n"
            "5.2.0 Failed to process message due to a permanent exception");
}

TEST(ParseSmtpReply, CodeOnlyAndOddInput) {
  EXPECT_EQ(ParseSmtpReply("250").code, 250);
  EXPECT_EQ(ParseSmtpReply("250 ").text, "");
  const SmtpReply garbage = ParseSmtpReply("HTTP/1.1 400 Bad Request\r\n");
  EXPECT_EQ(garbage.code, 0);
  EXPECT_EQ(garbage.raw, "HTTP/1.1 400 Bad Request");
  EXPECT_EQ(ParseSmtpReply("").code, 0);
}

TEST(ParseSmtpReply, EnhancedCodeMustLeadTheTextAndMatchTheClass) {
  // Postfix without ENHANCEDSTATUSCODES, and codes merely mentioned in the text.
  EXPECT_THAT(ParseSmtpReply("550 Mailbox unavailable (see 5.1.1)").enhanced_code, IsEmpty());
  EXPECT_THAT(ParseSmtpReply("550 4.1.1 class differs from the reply's").enhanced_code, IsEmpty());
  EXPECT_THAT(ParseSmtpReply("535 5.7.139Authentication").enhanced_code, IsEmpty());
  EXPECT_THAT(ParseSmtpReply("535 5.7.1390 too many digits").enhanced_code, IsEmpty());
  EXPECT_EQ(ParseSmtpReply("421 4.7.66 TLS 1.0 and 1.1 are not supported.").enhanced_code,
            "4.7.66");
  EXPECT_EQ(ParseSmtpReply("250 2.0.0").enhanced_code, "2.0.0");
}

struct Case {
  const char* reply;
  SmtpStage stage;
  fc::FailureCause cause;
  bool retryable;
  DeliveryOutcome outcome;
};

// Reply texts as Exchange Online (or Postfix, where noted) sends them.
const Case kCases[] = {
    {"535 5.7.3 Authentication unsuccessful [SN4PR0601CA0001.namprd06.prod.outlook.com]",
     SmtpStage::kAuth, fc::FAILURE_CAUSE_MAILBOX_AUTH_REJECTED, false,
     DeliveryOutcome::kAuthRejected},
    {"535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the "
     "Tenant. Visit https://aka.ms/smtp_auth_disabled for more information. "
     "[SN4PR0601CA0001.namprd06.prod.outlook.com]",
     SmtpStage::kAuth, fc::FAILURE_CAUSE_SMTP_AUTH_DISABLED, false, DeliveryOutcome::kPermanent},
    {"535 5.7.139 Authentication unsuccessful, the user credentials were incorrect.",
     SmtpStage::kAuth, fc::FAILURE_CAUSE_SMTP_AUTH_DISABLED, false, DeliveryOutcome::kPermanent},
    {"535 5.7.139 Authentication unsuccessful, user is locked by your organization's security "
     "defaults policy. Contact your administrator.",
     SmtpStage::kAuth, fc::FAILURE_CAUSE_SMTP_AUTH_DISABLED, false, DeliveryOutcome::kPermanent},
    // Codes, not text: a 5.7.3 reply that mentions 5.7.139 is still a 5.7.3.
    {"535 5.7.3 Authentication unsuccessful (not 5.7.139: SmtpClientAuthentication is "
     "disabled for the Tenant is NOT the reason)",
     SmtpStage::kAuth, fc::FAILURE_CAUSE_MAILBOX_AUTH_REJECTED, false,
     DeliveryOutcome::kAuthRejected},
    // Dovecot / Postfix after a refused XOAUTH2 token.
    {"535 5.7.8 Error: authentication failed: ", SmtpStage::kAuth,
     fc::FAILURE_CAUSE_MAILBOX_AUTH_REJECTED, false, DeliveryOutcome::kAuthRejected},
    {"530 5.7.57 Client not authenticated to send mail. [SN4PR0601CA0001.namprd06.prod."
     "outlook.com]",
     SmtpStage::kMailFrom, fc::FAILURE_CAUSE_CLIENT_NOT_AUTHENTICATED, false,
     DeliveryOutcome::kPermanent},
    {"530 5.7.0 Authentication required", SmtpStage::kMailFrom,
     fc::FAILURE_CAUSE_CLIENT_NOT_AUTHENTICATED, false, DeliveryOutcome::kPermanent},
    // Postfix before STARTTLS: not an authentication problem.
    {"530 5.7.0 Must issue a STARTTLS command first", SmtpStage::kEhlo,
     fc::FAILURE_CAUSE_SMTP_PERMANENT, false, DeliveryOutcome::kPermanent},
    {"550 5.7.60 SMTP; Client does not have permissions to send as this sender "
     "[SN4PR0601CA0001.namprd06.prod.outlook.com]",
     SmtpStage::kMailFrom, fc::FAILURE_CAUSE_SEND_AS_DENIED, false, DeliveryOutcome::kPermanent},
    {"550 5.7.60 SMTP; Client does not have permissions to send as this sender", SmtpStage::kData,
     fc::FAILURE_CAUSE_SEND_AS_DENIED, false, DeliveryOutcome::kPermanent},
    // Postfix's reject_authenticated_sender_login_mismatch.
    {"553 5.7.1 <other@example.test>: Sender address rejected: not owned by user "
     "noreply@example.test",
     SmtpStage::kMailFrom, fc::FAILURE_CAUSE_SEND_AS_DENIED, false, DeliveryOutcome::kPermanent},
    // ... which at RCPT TO is about the recipient.
    {"553 5.7.1 <x@example.org>: Relay access denied", SmtpStage::kRcptTo,
     fc::FAILURE_CAUSE_RECIPIENT_REJECTED, false, DeliveryOutcome::kPermanent},
    {"432 4.3.2 STOREDRV.ClientSubmit; sender thread limit exceeded "
     "[Hostname=SN4PR0601MB0001.namprd06.prod.outlook.com]",
     SmtpStage::kData, fc::FAILURE_CAUSE_CONCURRENT_CONNECTION_LIMIT, true,
     DeliveryOutcome::kTransient},
    {"432 4.3.2 Concurrent connections limit exceeded. Visit https://aka.ms/concurrent_sending "
     "for more information.",
     SmtpStage::kAuth, fc::FAILURE_CAUSE_CONCURRENT_CONNECTION_LIMIT, true,
     DeliveryOutcome::kTransient},
    {"451 4.3.2 Concurrent connections limit exceeded", SmtpStage::kMailFrom,
     fc::FAILURE_CAUSE_CONCURRENT_CONNECTION_LIMIT, true, DeliveryOutcome::kTransient},
    {"554 5.2.0 STOREDRV.Submission.Exception:SubmissionQuotaExceededException; Failed to "
     "process message due to a permanent exception with message [BeginDiagnosticData]...",
     SmtpStage::kData, fc::FAILURE_CAUSE_SUBMISSION_QUOTA_EXCEEDED, true,
     DeliveryOutcome::kQuotaExceeded},
    {"554 5.2.2 mailbox full; STOREDRV.Submission.Exception:QuotaExceededException.MapiExcept"
     "ionQuotaExceeded",
     SmtpStage::kData, fc::FAILURE_CAUSE_MAILBOX_FULL, false, DeliveryOutcome::kPermanent},
    {"552 5.3.4 Message size exceeds fixed maximum message size", SmtpStage::kMailFrom,
     fc::FAILURE_CAUSE_MESSAGE_TOO_LARGE, false, DeliveryOutcome::kPermanent},
    {"552 Message size exceeds fixed maximum message size", SmtpStage::kData,
     fc::FAILURE_CAUSE_MESSAGE_TOO_LARGE, false, DeliveryOutcome::kPermanent},
    {"554 5.3.4 Message too big for system", SmtpStage::kData, fc::FAILURE_CAUSE_MESSAGE_TOO_LARGE,
     false, DeliveryOutcome::kPermanent},
    {"550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup",
     SmtpStage::kRcptTo, fc::FAILURE_CAUSE_RECIPIENT_REJECTED, false, DeliveryOutcome::kPermanent},
    {"550 5.1.1 <reject@example.test>: Recipient address rejected: mailbox unavailable "
     "(testbed)",
     SmtpStage::kRcptTo, fc::FAILURE_CAUSE_RECIPIENT_REJECTED, false, DeliveryOutcome::kPermanent},
    // 552 at RCPT TO is "too many recipients" (RFC 5321 4.5.3.1.10), not the message size.
    {"552 5.5.3 Too many recipients", SmtpStage::kRcptTo, fc::FAILURE_CAUSE_RECIPIENT_REJECTED,
     false, DeliveryOutcome::kPermanent},
    {"451 4.3.0 <tempfail@example.test>: Recipient address rejected: temporary failure",
     SmtpStage::kRcptTo, fc::FAILURE_CAUSE_SMTP_TRANSIENT, true, DeliveryOutcome::kTransient},
    {"421 4.7.66 TLS 1.0 and 1.1 are not supported. Please upgrade/update your client to "
     "support TLS 1.2. Visit https://aka.ms/smtp_auth_tls.",
     SmtpStage::kGreeting, fc::FAILURE_CAUSE_SMTP_TRANSIENT, true, DeliveryOutcome::kTransient},
    {"421 4.4.2 Connection dropped due to SocketError", SmtpStage::kMailFrom,
     fc::FAILURE_CAUSE_SMTP_TRANSIENT, true, DeliveryOutcome::kTransient},
    {"421 4.3.2 Service not available", SmtpStage::kGreeting,
     fc::FAILURE_CAUSE_CONCURRENT_CONNECTION_LIMIT, true, DeliveryOutcome::kTransient},
    {"450 4.3.0 Error: command failed", SmtpStage::kMailFrom, fc::FAILURE_CAUSE_SMTP_TRANSIENT,
     true, DeliveryOutcome::kTransient},
    {"554 5.6.0 Corrupt message content", SmtpStage::kData, fc::FAILURE_CAUSE_SMTP_PERMANENT, false,
     DeliveryOutcome::kPermanent},
    {"501 5.5.4 Invalid domain name", SmtpStage::kEhlo, fc::FAILURE_CAUSE_SMTP_PERMANENT, false,
     DeliveryOutcome::kPermanent},
    // Exchange's high-volume endpoint: refetch the token (at least 10 minutes before expiry).
    {"501 5.5.127 Authentication unsuccessful, Token will expire soon", SmtpStage::kAuth,
     fc::FAILURE_CAUSE_SMTP_PERMANENT, false, DeliveryOutcome::kAuthRejected},
    // No enhanced code at all: the basic code decides.
    {"535 Authentication failed", SmtpStage::kAuth, fc::FAILURE_CAUSE_MAILBOX_AUTH_REJECTED, false,
     DeliveryOutcome::kAuthRejected},
    {"550 Requested action not taken", SmtpStage::kRcptTo, fc::FAILURE_CAUSE_RECIPIENT_REJECTED,
     false, DeliveryOutcome::kPermanent},
    {"550 Requested action not taken", SmtpStage::kMailFrom, fc::FAILURE_CAUSE_SMTP_PERMANENT,
     false, DeliveryOutcome::kPermanent},
};

TEST(ClassifySmtpReply, RecordedReplies) {
  for (const Case& c : kCases) {
    SCOPED_TRACE(c.reply);
    const SmtpReply reply = ParseSmtpReply(c.reply);
    const Diagnosis diagnosis = ClassifySmtpReply(reply, c.stage);
    EXPECT_EQ(diagnosis.cause(), c.cause) << fc::FailureCause_Name(diagnosis.cause());
    EXPECT_EQ(diagnosis.retryable(), c.retryable);
    EXPECT_EQ(OutcomeOf(diagnosis), c.outcome) << DeliveryOutcomeName(OutcomeOf(diagnosis));
    EXPECT_EQ(diagnosis.smtp_code(), reply.code);
    EXPECT_EQ(diagnosis.raw_reply(), c.reply);
    EXPECT_FALSE(diagnosis.title().empty());
    EXPECT_FALSE(diagnosis.fix().empty());
    if (reply.enhanced_code.empty()) {
      EXPECT_THAT(diagnosis.codes(), IsEmpty());
    } else {
      EXPECT_THAT(diagnosis.codes(), ElementsAre(reply.enhanced_code));
    }
  }
}

TEST(ClassifySmtpReply, MultiLineReplyKeepsAllLinesInRawReply) {
  const char kReply[] =
      "535-5.7.139 Authentication unsuccessful, the request did not meet the criteria to be\r\n"
      "535-5.7.139 authenticated successfully. Contact your administrator.\r\n"
      "535 5.7.139 [SN4PR0601CA0001.namprd06.prod.outlook.com]\r\n";
  const Diagnosis diagnosis = ClassifySmtpReply(ParseSmtpReply(kReply), SmtpStage::kAuth);
  EXPECT_EQ(diagnosis.cause(), fc::FAILURE_CAUSE_SMTP_AUTH_DISABLED);
  EXPECT_EQ(diagnosis.raw_reply(),
            "535-5.7.139 Authentication unsuccessful, the request did not meet the criteria to be\n"
            "535-5.7.139 authenticated successfully. Contact your administrator.\n"
            "535 5.7.139 [SN4PR0601CA0001.namprd06.prod.outlook.com]");
  EXPECT_THAT(diagnosis.codes(), ElementsAre("5.7.139"));
  EXPECT_EQ(diagnosis.title(), "SMTP AUTH is disabled");
}

TEST(ClassifySmtpReply, SeedTitleForMailboxPermission) {
  const Diagnosis diagnosis =
      ClassifySmtpReply(ParseSmtpReply("535 5.7.3 Authentication unsuccessful"), SmtpStage::kAuth);
  EXPECT_EQ(diagnosis.title(), "Invalid email address");
}

TEST(ClassifySmtpReply, SuccessIsNotAFailure) {
  const Diagnosis diagnosis = ClassifySmtpReply(
      ParseSmtpReply("250 2.0.0 OK <id@x> [Hostname=SN4PR0601MB0001]"), SmtpStage::kData);
  EXPECT_EQ(diagnosis.cause(), fc::FAILURE_CAUSE_UNSPECIFIED);
  EXPECT_EQ(diagnosis.smtp_code(), 250);
  EXPECT_EQ(OutcomeOf(diagnosis), DeliveryOutcome::kDelivered);
}

TEST(ClassifySmtpReply, NoReplyIsUnknown) {
  const Diagnosis diagnosis = ClassifySmtpReply(ParseSmtpReply("garbage"), SmtpStage::kData);
  EXPECT_EQ(diagnosis.cause(), fc::FAILURE_CAUSE_UNKNOWN);
  EXPECT_EQ(diagnosis.raw_reply(), "garbage");
  EXPECT_EQ(OutcomeOf(diagnosis), DeliveryOutcome::kPermanent);
}

TEST(OutcomeOf, FollowsRetryabilityOfNonSmtpCauses) {
  EXPECT_EQ(OutcomeOf(MakeDiagnosis(fc::FAILURE_CAUSE_CONNECT_TIMEOUT)),
            DeliveryOutcome::kTransient);
  EXPECT_EQ(OutcomeOf(MakeDiagnosis(fc::FAILURE_CAUSE_CONNECTION_LOST)),
            DeliveryOutcome::kTransient);
  EXPECT_EQ(OutcomeOf(MakeDiagnosis(fc::FAILURE_CAUSE_UNTRUSTED_CERTIFICATE_CHAIN)),
            DeliveryOutcome::kPermanent);
  EXPECT_EQ(OutcomeOf(MakeDiagnosis(fc::FAILURE_CAUSE_XOAUTH2_UNAVAILABLE)),
            DeliveryOutcome::kPermanent);
}

TEST(SmtpStageName, NamesCommands) {
  EXPECT_EQ(SmtpStageName(SmtpStage::kMailFrom), "MAIL FROM");
  EXPECT_EQ(SmtpStageName(SmtpStage::kRcptTo), "RCPT TO");
}

// Found by tests/fuzz/smtp_reply_fuzzer.cc: a stray CR before the line break stayed in the
// text, and `raw` then parsed to another reply.
TEST(ParseSmtpReply, EveryCrBeforeALineBreakIsDropped) {
  const SmtpReply reply = ParseSmtpReply("220 2.0.0 SMTP server ready\r\r\n\r\n");
  EXPECT_EQ(reply.code, 220);
  EXPECT_EQ(reply.text, "2.0.0 SMTP server ready");
  EXPECT_EQ(reply.raw, "220 2.0.0 SMTP server ready");
  EXPECT_EQ(ParseSmtpReply(reply.raw).raw, reply.raw);
}

// Found by tests/fuzz/smtp_reply_fuzzer.cc: "000" parsed as a reply whose code was 0, the
// value that means "not a reply", with an enhanced code "0.x.y" beside it.
TEST(ParseSmtpReply, ACodeOutsideOneToFiveIsNotAReply) {
  for (const char* lines : {"000 0.0.0 zero\r\n", "220-ready\r\n000 x\r\n", "600 6.0.0 no\r\n"}) {
    const SmtpReply reply = ParseSmtpReply(lines);
    EXPECT_EQ(reply.code, 0) << lines;
    EXPECT_THAT(reply.enhanced_code, IsEmpty()) << lines;
    EXPECT_EQ(reply.text, reply.raw) << lines;
  }
}

// Found by tests/fuzz/smtp_reply_fuzzer.cc: a reply text in Latin-1 gave a Diagnosis that
// did not survive the Status carrying it (raw_reply is a proto3 string, which must be UTF-8).
TEST(ClassifySmtpReply, AReplyThatIsNotUtf8KeepsItsDiagnosis) {
  const Diagnosis diagnosis =
      ClassifySmtpReply(ParseSmtpReply("550 5.1.1 utilisateur inconnu \xe9\r\n"),
                        SmtpStage::kRcptTo);
  EXPECT_EQ(diagnosis.cause(), fc::FAILURE_CAUSE_RECIPIENT_REJECTED);
  EXPECT_EQ(diagnosis.raw_reply(), "550 5.1.1 utilisateur inconnu \uFFFD");
  const absl::optional<Diagnosis> carried = DiagnosisOf(DiagnosedError(diagnosis));
  ASSERT_TRUE(carried.has_value());
  EXPECT_EQ(carried->cause(), fc::FAILURE_CAUSE_RECIPIENT_REJECTED);
}

}  // namespace
}  // namespace mailroom
