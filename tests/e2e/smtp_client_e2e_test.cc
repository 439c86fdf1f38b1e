// SmtpSession against real peers on loopback (tests/e2e/testbed): Postfix requiring STARTTLS
// and AUTH XOAUTH2, Dovecot validating the bearer tokens with the oidc-provider token server,
// delivery into a Maildir; Postfix's smtp-sink for replies the testbed's Postfix does not give;
// plain TCP listeners for the network failures. Needs root (Postfix); run with
// tags = ["local", "exclusive"].
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "common/base/logging.h"
#include "common/mail/smtp_client.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/testbed.h"

namespace mailroom {
namespace {

namespace fc = ::mailroom::common::v1;
using ::mailroom::testing::Testbed;
using ::mailroom::testing::UnusedLoopbackPort;
using ::testing::AllOf;
using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::SizeIs;

// Collects every log line (the smtp component logs at TRACE here), to check that none
// carries a token.
class CapturingSink final : public LogSink {
 public:
  void Write(absl::string_view line) override {
    absl::MutexLock lock(&mu_);
    lines_.emplace_back(line);
  }
  std::vector<std::string> lines() const {
    absl::MutexLock lock(&mu_);
    return lines_;
  }

 private:
  mutable absl::Mutex mu_;
  std::vector<std::string> lines_ ABSL_GUARDED_BY(mu_);
};

// A loopback listener whose accept queue is full: further connection attempts get no answer
// at all (the kernel drops their SYNs), as behind a firewall that drops packets.
class FullListener {
 public:
  FullListener() {
    listener_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(listener_, reinterpret_cast<sockaddr*>(&address), sizeof(address));
    listen(listener_, 0);
    socklen_t length = sizeof(address);
    getsockname(listener_, reinterpret_cast<sockaddr*>(&address), &length);
    port_ = ntohs(address.sin_port);
    for (int i = 0; i < 3; ++i) {
      const int filler = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
      connect(filler, reinterpret_cast<sockaddr*>(&address), sizeof(address));
      fillers_.push_back(filler);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  ~FullListener() {
    for (int fd : fillers_) close(fd);
    close(listener_);
  }
  int port() const { return port_; }

 private:
  int listener_ = -1;
  int port_ = 0;
  std::vector<int> fillers_;
};

std::string Lf(const std::string& crlf) { return absl::StrReplaceAll(crlf, {{"\r\n", "\n"}}); }

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream contents;
  contents << in.rdbuf();
  return contents.str();
}

Diagnosis DiagnosisOrDie(const absl::Status& status) {
  absl::optional<Diagnosis> diagnosis = DiagnosisOf(status);
  EXPECT_TRUE(diagnosis.has_value()) << status;
  return diagnosis.value_or(Diagnosis());
}

class SmtpClientE2eTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    log_sink_ = new std::shared_ptr<CapturingSink>(std::make_shared<CapturingSink>());
    Logging::SetSink(*log_sink_);
    Logging::SetComponentLevel(kLogSmtp, LogLevel::kTrace);
    const auto start = std::chrono::steady_clock::now();
    absl::StatusOr<std::unique_ptr<Testbed>> started = Testbed::Start();
    if (started.ok()) {
      testbed_ = started->release();
      std::printf("testbed up in %.1f s in %s\n",
                  std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(),
                  testbed_->dir().c_str());
    } else {
      start_error_ = new std::string(started.status().ToString());
    }
  }

  static void TearDownTestSuite() {
    delete testbed_;
    testbed_ = nullptr;
    Logging::Reset();
    delete log_sink_;
    log_sink_ = nullptr;
  }

  void SetUp() override {
    ASSERT_NE(testbed_, nullptr) << "the testbed did not start: " << *start_error_;
  }

  static Testbed& testbed() { return *testbed_; }
  static std::string Mailbox() { return testbed_->Env("MAILBOX"); }

  // The testbed's submission port, trusted through its CA only.
  static SmtpEndpoint Trusted() {
    SmtpEndpoint endpoint;
    endpoint.host = testbed_->Env("SMTP_HOST");
    endpoint.port = testbed_->EnvInt("SMTP_PORT");
    endpoint.ca_file = testbed_->Env("CA_FILE");
    endpoint.use_system_roots = false;
    endpoint.connect_timeout = absl::Seconds(10);
    endpoint.reply_timeout = absl::Seconds(10);
    endpoint.operation_timeout = absl::Seconds(30);
    return endpoint;
  }

  // An smtp-sink (no TLS) with `options`, reached in the test-only plaintext mode.
  static SmtpEndpoint Sink(const std::vector<std::string>& options) {
    absl::StatusOr<int> port = testbed_->StartSink(options);
    EXPECT_TRUE(port.ok()) << port.status();
    SmtpEndpoint endpoint;
    endpoint.host = "127.0.0.1";
    endpoint.port = port.value_or(0);
    endpoint.allow_plaintext_for_tests = true;
    endpoint.connect_timeout = absl::Seconds(10);
    endpoint.reply_timeout = absl::Seconds(5);
    endpoint.operation_timeout = absl::Seconds(30);
    return endpoint;
  }

  static std::string Token() {
    absl::StatusOr<std::string> token = testbed_->FetchToken();
    EXPECT_TRUE(token.ok()) << token.status();
    return token.value_or("");
  }

  static std::string OtherToken() {
    absl::StatusOr<std::string> token = testbed_->FetchToken(testbed_->Env("OTHER_CLIENT_ID"),
                                                             testbed_->Env("OTHER_CLIENT_SECRET"));
    EXPECT_TRUE(token.ok()) << token.status();
    return token.value_or("");
  }

  // A recipient address no other test uses (every testbed address lands in one Maildir;
  // Delivered-To tells them apart).
  static std::string Recipient(absl::string_view tag) {
    static int counter = 0;
    return absl::StrCat("guest-", tag, "-", ++counter, "@example.test");
  }

  static std::string Message(const std::string& to, const std::string& subject,
                             const std::string& body) {
    static int counter = 0;
    return absl::StrCat("From: mailroom <", Mailbox(), ">\r\nTo: <", to, ">\r\nSubject: ", subject,
                        "\r\nDate: Sun, 29 Nov 2026 10:00:00 +0000\r\nMessage-ID: <e2e-", getpid(),
                        "-", ++counter,
                        "@mailroom.test>\r\nMIME-Version: 1.0\r\n"
                        "Content-Type: text/plain; charset=utf-8\r\n"
                        "Content-Transfer-Encoding: 8bit\r\n\r\n",
                        body);
  }

  // Every transcript and log line so far is free of `token` and of the XOAUTH2 response.
  static void ExpectNoCredentialIn(const std::vector<std::string>& lines,
                                   const std::string& token) {
    ASSERT_FALSE(token.empty());
    const std::string initial_response = absl::Base64Escape(
        absl::StrCat("user=", Mailbox(), "\x01", "auth=Bearer ", token, "\x01\x01"));
    for (const std::string& line : lines) {
      EXPECT_THAT(line, Not(HasSubstr(token)));
      EXPECT_THAT(line, Not(HasSubstr(initial_response.substr(0, 40))));
      EXPECT_THAT(line, Not(HasSubstr("dXNlcj1")));  // base64 of "user="
    }
  }

  static Testbed* testbed_;
  static std::string* start_error_;
  static std::shared_ptr<CapturingSink>* log_sink_;
};

Testbed* SmtpClientE2eTest::testbed_ = nullptr;
std::string* SmtpClientE2eTest::start_error_ = nullptr;
std::shared_ptr<CapturingSink>* SmtpClientE2eTest::log_sink_ = nullptr;

TEST_F(SmtpClientE2eTest, ConnectSucceedsAndReportsEachStep) {
  const std::string token = Token();
  SmtpEndpoint endpoint = Trusted();
  endpoint.ehlo_name = "psn-1.mailroom.test";
  SmtpSession session(endpoint, Mailbox());
  session.SetBearerToken(token);
  absl::StatusOr<ConnectReport> report = session.Connect();
  ASSERT_TRUE(report.ok()) << report.status() << "\n" << absl::StrJoin(session.Transcript(), "\n");

  EXPECT_EQ(report->endpoint, absl::StrCat("smtp://127.0.0.1:", testbed().Env("SMTP_PORT")));
  EXPECT_GT(report->tcp_connect, absl::ZeroDuration());
  EXPECT_GT(report->tls, absl::ZeroDuration());
  EXPECT_GT(report->auth, absl::ZeroDuration());
  EXPECT_GE(report->total, report->tcp_connect + report->tls + report->auth);
  std::printf("Connect: tcp %s, STARTTLS+TLS %s, AUTH XOAUTH2 %s, total %s\n",
              absl::FormatDuration(report->tcp_connect).c_str(),
              absl::FormatDuration(report->tls).c_str(), absl::FormatDuration(report->auth).c_str(),
              absl::FormatDuration(report->total).c_str());

  EXPECT_EQ(report->greeting.code, 220);
  EXPECT_THAT(report->greeting.text, HasSubstr("ESMTP"));
  EXPECT_EQ(report->ehlo.code, 250);
  EXPECT_THAT(report->ehlo.text, HasSubstr("AUTH XOAUTH2"));
  EXPECT_THAT(report->ehlo.text, Not(HasSubstr("STARTTLS")));  // the EHLO after STARTTLS
  EXPECT_EQ(report->auth_reply.code, 235);
  EXPECT_EQ(report->auth_reply.enhanced_code, "2.7.0");
  ASSERT_THAT(report->certificates, SizeIs(1));
  EXPECT_THAT(report->certificates[0].subject, HasSubstr("CN = localhost"));
  EXPECT_THAT(report->certificates[0].issuer, HasSubstr("mailroom testbed root CA"));
  EXPECT_THAT(report->certificates[0].subject_alt_names, HasSubstr("IP Address:127.0.0.1"));
  EXPECT_THAT(report->certificates[0].pem, HasSubstr("BEGIN CERTIFICATE"));

  const std::vector<std::string> transcript = session.Transcript();
  EXPECT_EQ(report->transcript, transcript);
  EXPECT_THAT(transcript, Contains(HasSubstr("S: 220 ")));
  EXPECT_THAT(transcript, Contains("C: EHLO psn-1.mailroom.test"));
  EXPECT_THAT(transcript, Contains("C: STARTTLS"));
  EXPECT_THAT(transcript, Contains("C: AUTH XOAUTH2 [REDACTED]"));
  EXPECT_THAT(transcript, Contains("S: 235 2.7.0 Authentication successful"));
  EXPECT_THAT(transcript, Contains("C: NOOP"));
  ExpectNoCredentialIn(transcript, token);
  ExpectNoCredentialIn((*log_sink_)->lines(), token);
  EXPECT_THAT((*log_sink_)->lines(), Contains(HasSubstr("C: AUTH XOAUTH2 [REDACTED]")));
}

TEST_F(SmtpClientE2eTest, TwoMessagesShareOneConnectionAndArriveByteForByte) {
  const std::string token = Token();
  const std::string to = Recipient("reuse");
  // Dot-stuffing, a lone ".", "From " at a line start, 8-bit UTF-8, a long line, trailing blanks.
  const std::string body1 = absl::StrCat(
      "Hello guest,\r\n.\r\n..two dots\r\n.leading dot\r\nFrom the start of a line\r\n"
      "Grüße — 你好 — Ωμέγα\r\n",
      std::string(900, 'x'), "\r\ntrailing blanks   \r\n\r\nlast line\r\n");
  const std::string body2 = "Second message.\r\n.\r\nEnd.\r\n";
  const std::string message1 = Message(to, "first", body1);
  const std::string message2 = Message(to, "second", body2);

  SmtpSession session(Trusted(), Mailbox());
  session.SetBearerToken(token);
  ASSERT_TRUE(session.Connect().ok()) << absl::StrJoin(session.Transcript(), "\n");
  const SendResult first = session.Send(Mailbox(), {to}, message1);
  ASSERT_TRUE(first.ok) << FormatDiagnosis(first.diagnosis);
  const SendResult second = session.Send(Mailbox(), {to}, message2);
  ASSERT_TRUE(second.ok) << FormatDiagnosis(second.diagnosis);

  // Both went over the connection Connect() opened (CURLINFO_NUM_CONNECTS == 0).
  EXPECT_FALSE(first.new_connection);
  EXPECT_FALSE(second.new_connection);
  for (const SendResult* sent : {&first, &second}) {
    EXPECT_EQ(sent->outcome, DeliveryOutcome::kDelivered);
    EXPECT_EQ(sent->reply.code, 250);
    EXPECT_EQ(sent->reply.enhanced_code, "2.0.0");
    EXPECT_THAT(sent->reply.text, HasSubstr("queued as"));
    EXPECT_EQ(sent->diagnosis.cause(), fc::FAILURE_CAUSE_UNSPECIFIED);
    ASSERT_THAT(sent->recipients, SizeIs(1));
    EXPECT_TRUE(sent->recipients[0].accepted);
    EXPECT_EQ(sent->recipients[0].reply.code, 250);
  }
  EXPECT_NE(first.reply.text, second.reply.text);  // two queue ids
  const std::vector<std::string> transcript = session.Transcript();
  EXPECT_THAT(transcript, Contains(HasSubstr("Re-using existing connection")));
  EXPECT_THAT(transcript, Not(Contains(HasSubstr("C: AUTH"))));
  EXPECT_THAT(transcript, Contains(HasSubstr(" bytes of message data]")));
  EXPECT_THAT(absl::StrJoin(transcript, "\n"), Not(HasSubstr("Second message")));

  const std::vector<std::string> delivered = testbed().WaitForDelivered(to, 2, absl::Seconds(20));
  ASSERT_THAT(delivered, SizeIs(2));
  // Postfix stores LF line endings and prepends Return-Path, Delivered-To and Received; the
  // rest is the message exactly as submitted.
  EXPECT_TRUE(absl::EndsWith(delivered[0], Lf(message1))) << delivered[0];
  EXPECT_TRUE(absl::EndsWith(delivered[1], Lf(message2))) << delivered[1];
  EXPECT_THAT(delivered[0], HasSubstr(absl::StrCat("Return-Path: <", Mailbox(), ">")));

  // Close() ends the session with QUIT. Postfix logs each session's commands when it ends:
  // one session did it all.
  session.Close();
  auto one_session = [](const std::string& log) {
    for (absl::string_view line : absl::StrSplit(log, '\n')) {
      if (absl::StrContains(line, "disconnect from") && absl::StrContains(line, " auth=1 ") &&
          absl::StrContains(line, " noop=1 ") && absl::StrContains(line, " mail=2 ") &&
          absl::StrContains(line, " data=2 ") && absl::StrContains(line, " quit=1 ")) {
        return true;
      }
    }
    return false;
  };
  std::string log;
  for (int i = 0; i < 100 && !one_session(log); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    log = ReadFile(testbed().Env("POSTFIX_LOG"));
  }
  EXPECT_TRUE(one_session(log)) << log;
  ExpectNoCredentialIn((*log_sink_)->lines(), token);
}

TEST_F(SmtpClientE2eTest, SendConnectsOnDemandAndANewTokenOpensANewConnection) {
  const std::string to = Recipient("token");
  SmtpSession session(Trusted(), Mailbox());
  session.SetBearerToken(Token());
  const SendResult first = session.Send(Mailbox(), {to}, Message(to, "1", "one\r\n"));
  ASSERT_TRUE(first.ok) << FormatDiagnosis(first.diagnosis);
  EXPECT_TRUE(first.new_connection);
  EXPECT_THAT(session.Transcript(), Contains("C: AUTH XOAUTH2 [REDACTED]"));
  const SendResult second = session.Send(Mailbox(), {to}, Message(to, "2", "two\r\n"));
  ASSERT_TRUE(second.ok) << FormatDiagnosis(second.diagnosis);
  EXPECT_FALSE(second.new_connection);

  session.SetBearerToken(Token());  // a fresh token, as after a refresh
  const SendResult third = session.Send(Mailbox(), {to}, Message(to, "3", "three\r\n"));
  ASSERT_TRUE(third.ok) << FormatDiagnosis(third.diagnosis);
  EXPECT_TRUE(third.new_connection);
  EXPECT_THAT(session.Transcript(), Contains("C: AUTH XOAUTH2 [REDACTED]"));
  EXPECT_THAT(testbed().WaitForDelivered(to, 3, absl::Seconds(20)), SizeIs(3));
}

TEST_F(SmtpClientE2eTest, IdleConnectionIsReplaced) {
  const std::string to = Recipient("idle");
  SmtpEndpoint endpoint = Trusted();
  endpoint.max_idle = absl::Seconds(1);
  SmtpSession session(endpoint, Mailbox());
  session.SetBearerToken(Token());
  ASSERT_TRUE(session.Send(Mailbox(), {to}, Message(to, "1", "one\r\n")).ok);
  std::this_thread::sleep_for(std::chrono::milliseconds(2100));
  const SendResult later = session.Send(Mailbox(), {to}, Message(to, "2", "two\r\n"));
  ASSERT_TRUE(later.ok) << FormatDiagnosis(later.diagnosis);
  EXPECT_TRUE(later.new_connection);
}

TEST_F(SmtpClientE2eTest, AnotherAppsTokenIsInvalidEmailAddress) {
  // A valid token of an app granted another mailbox (no Add-MailboxPermission for this one).
  const std::string token = OtherToken();
  SmtpSession session(Trusted(), Mailbox());
  session.SetBearerToken(token);
  absl::StatusOr<ConnectReport> report = session.Connect();
  ASSERT_FALSE(report.ok());
  EXPECT_EQ(report.status().code(), absl::StatusCode::kFailedPrecondition);
  const Diagnosis diagnosis = DiagnosisOrDie(report.status());
  EXPECT_EQ(diagnosis.cause(), fc::FAILURE_CAUSE_MAILBOX_AUTH_REJECTED)
      << FormatDiagnosis(diagnosis);
  EXPECT_EQ(diagnosis.title(), "Invalid email address");
  EXPECT_FALSE(diagnosis.retryable());
  EXPECT_EQ(diagnosis.endpoint(), absl::StrCat("smtp://127.0.0.1:", testbed().Env("SMTP_PORT")));
  // Dovecot answers the refused token with an RFC 7628 error challenge (334 + base64 JSON),
  // where libcurl 7.88 stops: the server's reply is kept, decoded beside it.
  EXPECT_THAT(diagnosis.raw_reply(), HasSubstr("334 "));
  EXPECT_THAT(diagnosis.raw_reply(), HasSubstr("\"status\":\"401\""));
  EXPECT_EQ(session.last_connect().auth_reply.code, 334);
  ExpectNoCredentialIn(session.Transcript(), token);

  // The same refusal while sending: drop the token, fetch a new one, retry once.
  const std::string to = Recipient("other-token");
  const SendResult sent = session.Send(Mailbox(), {to}, Message(to, "x", "x\r\n"));
  EXPECT_FALSE(sent.ok);
  EXPECT_EQ(sent.diagnosis.cause(), fc::FAILURE_CAUSE_MAILBOX_AUTH_REJECTED);
  EXPECT_EQ(sent.outcome, DeliveryOutcome::kAuthRejected);
  EXPECT_EQ(sent.reply.code, 334);
  ExpectNoCredentialIn(session.Transcript(), token);
  ExpectNoCredentialIn((*log_sink_)->lines(), token);
}

TEST_F(SmtpClientE2eTest, AnotherFromAddressIsSendAsDenied) {
  const std::string to = Recipient("send-as");
  SmtpSession session(Trusted(), Mailbox());
  session.SetBearerToken(Token());
  const SendResult sent =
      session.Send(testbed().Env("OTHER_MAILBOX"), {to}, Message(to, "send as", "x\r\n"));
  EXPECT_FALSE(sent.ok);
  EXPECT_EQ(sent.diagnosis.cause(), fc::FAILURE_CAUSE_SEND_AS_DENIED)
      << FormatDiagnosis(sent.diagnosis);
  EXPECT_EQ(sent.outcome, DeliveryOutcome::kPermanent);
  EXPECT_EQ(sent.reply.code, 553);
  EXPECT_EQ(sent.reply.enhanced_code, "5.7.1");
  EXPECT_THAT(sent.diagnosis.raw_reply(), HasSubstr("not owned by user"));
  EXPECT_EQ(sent.diagnosis.smtp_code(), 553);
  EXPECT_THAT(sent.diagnosis.codes(), Contains("5.7.1"));
  ASSERT_THAT(sent.recipients, SizeIs(1));
  EXPECT_EQ(sent.recipients[0].reply.code, 0);  // RCPT TO never sent

  // The session recovers: the next message goes out (over a new connection).
  const SendResult next = session.Send(Mailbox(), {to}, Message(to, "after", "y\r\n"));
  EXPECT_TRUE(next.ok) << FormatDiagnosis(next.diagnosis);
  EXPECT_THAT(testbed().WaitForDelivered(to, 1, absl::Seconds(20)), SizeIs(1));
}

TEST_F(SmtpClientE2eTest, ARefusedRecipientDoesNotStopTheOthers) {
  const std::string good = Recipient("partial");
  SmtpSession session(Trusted(), Mailbox());
  session.SetBearerToken(Token());
  const SendResult sent =
      session.Send(Mailbox(), {"reject@example.test", good, "tempfail@example.test"},
                   Message(good, "partial", "to some\r\n"));
  ASSERT_TRUE(sent.ok) << FormatDiagnosis(sent.diagnosis);
  ASSERT_THAT(sent.recipients, SizeIs(3));
  EXPECT_FALSE(sent.recipients[0].accepted);
  EXPECT_EQ(sent.recipients[0].address, "reject@example.test");
  EXPECT_EQ(sent.recipients[0].reply.code, 550);
  EXPECT_EQ(sent.recipients[0].reply.enhanced_code, "5.1.1");
  EXPECT_TRUE(sent.recipients[1].accepted);
  EXPECT_FALSE(sent.recipients[2].accepted);
  EXPECT_EQ(sent.recipients[2].reply.code, 451);
  EXPECT_EQ(ClassifySmtpReply(sent.recipients[0].reply, SmtpStage::kRcptTo).cause(),
            fc::FAILURE_CAUSE_RECIPIENT_REJECTED);
  EXPECT_THAT(testbed().WaitForDelivered(good, 1, absl::Seconds(20)), SizeIs(1));

  // Every recipient refused: nothing is sent.
  const SendResult none = session.Send(Mailbox(), {"reject@example.test", "reject+2@example.test"},
                                       Message(good, "none", "x\r\n"));
  EXPECT_FALSE(none.ok);
  EXPECT_EQ(none.diagnosis.cause(), fc::FAILURE_CAUSE_RECIPIENT_REJECTED)
      << FormatDiagnosis(none.diagnosis);
  EXPECT_EQ(none.outcome, DeliveryOutcome::kPermanent);
  EXPECT_EQ(none.reply.code, 550);
  // ... but when one refusal is temporary, the message is worth retrying.
  const SendResult later = session.Send(Mailbox(), {"reject@example.test", "tempfail@example.test"},
                                        Message(good, "later", "x\r\n"));
  EXPECT_FALSE(later.ok);
  EXPECT_EQ(later.diagnosis.cause(), fc::FAILURE_CAUSE_SMTP_TRANSIENT)
      << FormatDiagnosis(later.diagnosis);
  EXPECT_EQ(later.outcome, DeliveryOutcome::kTransient);
  EXPECT_EQ(later.reply.code, 451);
}

TEST_F(SmtpClientE2eTest, UntrustedChainIsListedWithoutSendingTheToken) {
  const std::string token = Token();
  SmtpEndpoint endpoint = Trusted();
  endpoint.port = testbed().EnvInt("SMTP_UNTRUSTED_PORT");
  SmtpSession session(endpoint, Mailbox());
  session.SetBearerToken(token);
  absl::StatusOr<ConnectReport> report = session.Connect();
  ASSERT_FALSE(report.ok());
  const Diagnosis diagnosis = DiagnosisOrDie(report.status());
  EXPECT_EQ(diagnosis.cause(), fc::FAILURE_CAUSE_UNTRUSTED_CERTIFICATE_CHAIN)
      << FormatDiagnosis(diagnosis);
  EXPECT_EQ(diagnosis.title(),
            "PKIX path building failed: unable to find valid certification path to requested "
            "target");
  EXPECT_THAT(diagnosis.fix(), HasSubstr("settings.smtp_trust_store"));
  EXPECT_THAT(diagnosis.raw_reply(), HasSubstr("unable to get local issuer certificate"));
  EXPECT_THAT(diagnosis.raw_reply(), HasSubstr("untrusted testbed root CA"));
  EXPECT_THAT(diagnosis.codes(), Contains("X509_V_ERR_20"));

  const std::vector<CertificateSummary>& chain = session.last_connect().certificates;
  ASSERT_THAT(chain, SizeIs(1));
  EXPECT_EQ(chain[0].subject, "O = mailroom testbed, CN = localhost");
  EXPECT_EQ(chain[0].issuer, "O = mailroom testbed, CN = untrusted testbed root CA");
  EXPECT_THAT(chain[0].not_after, HasSubstr("GMT"));
  std::printf("%s\n", FormatDiagnosis(diagnosis).c_str());

  // Neither the verified connection (it failed in the handshake) nor the unverified one that
  // listed the chain sent AUTH.
  const std::vector<std::string> transcript = session.Transcript();
  EXPECT_THAT(transcript, Not(Contains(HasSubstr("C: AUTH"))));
  EXPECT_THAT(transcript, Contains(HasSubstr("without verification and without credentials")));
  ExpectNoCredentialIn(transcript, token);
}

TEST_F(SmtpClientE2eTest, HostNameMismatchIsNamed) {
  SmtpEndpoint endpoint = Trusted();
  endpoint.host = "smtp.mismatch.example";
  endpoint.connect_address = "127.0.0.1";
  SmtpSession session(endpoint, Mailbox());
  session.SetBearerToken(Token());
  absl::StatusOr<ConnectReport> report = session.Connect();
  ASSERT_FALSE(report.ok());
  const Diagnosis diagnosis = DiagnosisOrDie(report.status());
  EXPECT_EQ(diagnosis.cause(), fc::FAILURE_CAUSE_CERTIFICATE_NAME_MISMATCH)
      << FormatDiagnosis(diagnosis);
  EXPECT_THAT(diagnosis.raw_reply(), HasSubstr("smtp.mismatch.example"));
  ASSERT_THAT(session.last_connect().certificates, SizeIs(1));
  EXPECT_THAT(session.last_connect().certificates[0].subject_alt_names, HasSubstr("localhost"));
  EXPECT_THAT(session.Transcript(), Not(Contains(HasSubstr("C: AUTH"))));
}

TEST_F(SmtpClientE2eTest, ClosedPortIsConnectionRefused) {
  SmtpEndpoint endpoint = Trusted();
  endpoint.port = UnusedLoopbackPort();
  SmtpSession session(endpoint, Mailbox());
  session.SetBearerToken(Token());
  absl::StatusOr<ConnectReport> report = session.Connect();
  ASSERT_FALSE(report.ok());
  EXPECT_EQ(report.status().code(), absl::StatusCode::kUnavailable);
  const Diagnosis diagnosis = DiagnosisOrDie(report.status());
  EXPECT_EQ(diagnosis.cause(), fc::FAILURE_CAUSE_CONNECTION_REFUSED) << FormatDiagnosis(diagnosis);
  EXPECT_TRUE(diagnosis.retryable());
  EXPECT_EQ(diagnosis.endpoint(), absl::StrCat("smtp://127.0.0.1:", endpoint.port));
  EXPECT_EQ(diagnosis.title(), "Connection to 127.0.0.1 failed: connection refused");
  EXPECT_THAT(diagnosis.raw_reply(), HasSubstr("Failed to connect to 127.0.0.1 port"));

  const std::string to = Recipient("refused");
  const SendResult sent = session.Send(Mailbox(), {to}, Message(to, "x", "x\r\n"));
  EXPECT_EQ(sent.diagnosis.cause(), fc::FAILURE_CAUSE_CONNECTION_REFUSED);
  EXPECT_EQ(sent.outcome, DeliveryOutcome::kTransient);
}

TEST_F(SmtpClientE2eTest, UnknownHostIsDns) {
  SmtpEndpoint endpoint = Trusted();
  endpoint.host = "no-such-host.invalid";
  endpoint.connect_timeout = absl::Seconds(5);
  SmtpSession session(endpoint, Mailbox());
  absl::StatusOr<ConnectReport> report = session.Connect();
  ASSERT_FALSE(report.ok());
  const Diagnosis diagnosis = DiagnosisOrDie(report.status());
  EXPECT_EQ(diagnosis.cause(), fc::FAILURE_CAUSE_DNS_RESOLUTION_FAILED);
  EXPECT_EQ(diagnosis.title(), "Connection to no-such-host.invalid failed: host name not found");
}

TEST_F(SmtpClientE2eTest, UnansweredConnectIsConnectTimeout) {
  FullListener listener;
  SmtpEndpoint endpoint = Trusted();
  endpoint.port = listener.port();
  endpoint.connect_timeout = absl::Seconds(1);
  SmtpSession session(endpoint, Mailbox());
  session.SetBearerToken(Token());
  const auto start = std::chrono::steady_clock::now();
  absl::StatusOr<ConnectReport> report = session.Connect();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_FALSE(report.ok());
  const Diagnosis diagnosis = DiagnosisOrDie(report.status());
  EXPECT_EQ(diagnosis.cause(), fc::FAILURE_CAUSE_CONNECT_TIMEOUT) << FormatDiagnosis(diagnosis);
  // The seed's words, naming the host.
  EXPECT_EQ(diagnosis.title(),
            absl::StrCat("Connection to ", endpoint.host, " failed: connect timed out"));
  EXPECT_LT(seconds, 5.0);
}

// ---- Through an HTTP proxy (tinyproxy): a CONNECT tunnel, then STARTTLS end to end.

TEST_F(SmtpClientE2eTest, AMessageGoesThroughAnAllowingProxy) {
  absl::StatusOr<testing::TestProxy> proxy = testbed().StartProxy("allow");
  ASSERT_TRUE(proxy.ok()) << proxy.status();
  const std::string token = Token();
  SmtpEndpoint endpoint = Trusted();
  endpoint.proxy.url = proxy->url;
  SmtpSession session(endpoint, Mailbox());
  session.SetBearerToken(token);
  absl::StatusOr<ConnectReport> report = session.Connect();
  ASSERT_TRUE(report.ok()) << report.status() << "\n" << absl::StrJoin(session.Transcript(), "\n");
  EXPECT_EQ(report->proxy, proxy->url);
  EXPECT_THAT(report->proxy_reply, HasSubstr(" 200 "));
  EXPECT_EQ(report->greeting.code, 220);
  EXPECT_EQ(report->auth_reply.code, 235);
  const std::string target = absl::StrCat("127.0.0.1:", testbed().Env("SMTP_PORT"));
  EXPECT_THAT(report->transcript, Contains(absl::StrCat("C: CONNECT ", target, " HTTP/1.1")));
  const std::string to = Recipient("proxy");
  const SendResult sent = session.Send(Mailbox(), {to}, Message(to, "via proxy", "tunnelled\r\n"));
  ASSERT_TRUE(sent.ok) << FormatDiagnosis(sent.diagnosis);
  EXPECT_THAT(testbed().WaitForDelivered(to, 1, absl::Seconds(20)), SizeIs(1));
  // The proxy's log is the proof: one tunnel, to the SMTP port.
  EXPECT_THAT(Testbed::ProxyConnects(*proxy), Contains(target));
}

TEST_F(SmtpClientE2eTest, AnAuthenticatingProxyTakesTheCredentialsAndNeverShowsThem) {
  absl::StatusOr<testing::TestProxy> proxy = testbed().StartProxy("auth");
  ASSERT_TRUE(proxy.ok()) << proxy.status();
  std::string credentials = ReadFile(proxy->credentials_file);
  credentials = std::string(absl::StripTrailingAsciiWhitespace(credentials));
  const std::string password = credentials.substr(credentials.find(':') + 1);
  const std::string token = Token();
  SmtpEndpoint endpoint = Trusted();
  endpoint.proxy.url = proxy->url;

  // None: 407. Wrong ones: tinyproxy answers 401.
  for (const std::string& given : {std::string(), std::string("mailroom-proxy:wrong-password")}) {
    SCOPED_TRACE(given);
    endpoint.proxy.credentials = given;
    SmtpSession session(endpoint, Mailbox());
    session.SetBearerToken(token);
    absl::StatusOr<ConnectReport> report = session.Connect();
    ASSERT_FALSE(report.ok());
    const Diagnosis diagnosis = DiagnosisOrDie(report.status());
    EXPECT_EQ(diagnosis.cause(), given.empty() ? fc::FAILURE_CAUSE_PROXY_AUTH_REQUIRED
                                               : fc::FAILURE_CAUSE_PROXY_AUTH_REJECTED)
        << FormatDiagnosis(diagnosis);
    EXPECT_THAT(diagnosis.codes(), Contains(given.empty() ? "PROXY 407" : "PROXY 401"));
    EXPECT_EQ(diagnosis.endpoint(), absl::StrCat("smtp://127.0.0.1:", endpoint.port));
    EXPECT_THAT(diagnosis.raw_reply(), HasSubstr(proxy->url));
    EXPECT_THAT(session.Transcript(), Not(Contains(HasSubstr("C: AUTH"))));
    const SendResult sent = session.Send(Mailbox(), {"x@example.test"}, Message("x@example.test", "x", "x\r\n"));
    EXPECT_EQ(sent.outcome, DeliveryOutcome::kTransient);  // mail waits for the proxy's fix
  }

  endpoint.proxy.credentials = credentials;
  SmtpSession session(endpoint, Mailbox());
  session.SetBearerToken(token);
  absl::StatusOr<ConnectReport> report = session.Connect();
  ASSERT_TRUE(report.ok()) << report.status() << "\n" << absl::StrJoin(session.Transcript(), "\n");
  EXPECT_THAT(report->transcript, Contains("C: Proxy-Authorization: [REDACTED]"));
  const std::string basic = absl::Base64Escape(credentials);
  for (const std::vector<std::string>& lines : {report->transcript, (*log_sink_)->lines()}) {
    for (const std::string& line : lines) {
      EXPECT_THAT(line, Not(HasSubstr(password)));
      EXPECT_THAT(line, Not(HasSubstr(basic.substr(0, 16))));
    }
  }
}

TEST_F(SmtpClientE2eTest, AProxyThatDeniesTheTunnelIsNamed) {
  absl::StatusOr<testing::TestProxy> proxy = testbed().StartProxy("deny");
  ASSERT_TRUE(proxy.ok()) << proxy.status();
  SmtpEndpoint endpoint = Trusted();
  endpoint.proxy.url = proxy->url;
  SmtpSession session(endpoint, Mailbox());
  session.SetBearerToken(Token());
  absl::StatusOr<ConnectReport> report = session.Connect();
  ASSERT_FALSE(report.ok());
  const Diagnosis diagnosis = DiagnosisOrDie(report.status());
  EXPECT_EQ(diagnosis.cause(), fc::FAILURE_CAUSE_PROXY_CONNECT_DENIED) << FormatDiagnosis(diagnosis);
  EXPECT_EQ(diagnosis.title(), "Proxy denied the CONNECT tunnel");
  EXPECT_THAT(diagnosis.codes(), Contains("PROXY 403"));
  EXPECT_EQ(diagnosis.endpoint(), absl::StrCat("smtp://127.0.0.1:", endpoint.port));
  EXPECT_THAT(session.last_connect().proxy_reply, HasSubstr("403"));
}

TEST_F(SmtpClientE2eTest, ProxyThatRefusesOrNeverAcceptsIsNamed) {
  SmtpEndpoint endpoint = Trusted();
  endpoint.connect_timeout = absl::Seconds(1);
  endpoint.proxy.url = absl::StrCat("http://127.0.0.1:", UnusedLoopbackPort());
  {
    SmtpSession session(endpoint, Mailbox());
    absl::StatusOr<ConnectReport> report = session.Connect();
    ASSERT_FALSE(report.ok());
    EXPECT_EQ(DiagnosisOrDie(report.status()).cause(), fc::FAILURE_CAUSE_PROXY_CONNECTION_REFUSED);
  }
  FullListener full;  // its accept queue is full: connecting to it times out
  endpoint.proxy.url = absl::StrCat("http://127.0.0.1:", full.port());
  SmtpSession session(endpoint, Mailbox());
  absl::StatusOr<ConnectReport> report = session.Connect();
  ASSERT_FALSE(report.ok());
  const Diagnosis diagnosis = DiagnosisOrDie(report.status());
  EXPECT_EQ(diagnosis.cause(), fc::FAILURE_CAUSE_PROXY_UNREACHABLE) << FormatDiagnosis(diagnosis);
}

TEST_F(SmtpClientE2eTest, SilentServerIsConnectionLost) {
  // smtp-sink accepts the connection and waits 5 s before its greeting.
  SmtpEndpoint endpoint = Sink({"-W", "CONNECT:5"});
  endpoint.reply_timeout = absl::Seconds(1);
  SmtpSession session(endpoint, Mailbox());
  absl::StatusOr<ConnectReport> report = session.Connect();
  ASSERT_FALSE(report.ok());
  const Diagnosis diagnosis = DiagnosisOrDie(report.status());
  EXPECT_EQ(diagnosis.cause(), fc::FAILURE_CAUSE_CONNECTION_LOST) << FormatDiagnosis(diagnosis);
  EXPECT_THAT(diagnosis.codes(), Contains("CURLE_28"));
}

TEST_F(SmtpClientE2eTest, NoStartTlsMeansNoToken) {
  // smtp-sink offers no STARTTLS (and AUTH PLAIN LOGIN in the clear): a token must not go.
  const std::string token = Token();
  SmtpEndpoint endpoint = Sink({});
  endpoint.allow_plaintext_for_tests = false;
  SmtpSession session(endpoint, Mailbox());
  session.SetBearerToken(token);
  absl::StatusOr<ConnectReport> report = session.Connect();
  ASSERT_FALSE(report.ok());
  EXPECT_EQ(DiagnosisOrDie(report.status()).cause(), fc::FAILURE_CAUSE_STARTTLS_UNAVAILABLE);
  const std::string to = Recipient("no-tls");
  const SendResult sent = session.Send(Mailbox(), {to}, Message(to, "x", "x\r\n"));
  EXPECT_EQ(sent.diagnosis.cause(), fc::FAILURE_CAUSE_STARTTLS_UNAVAILABLE);
  EXPECT_EQ(sent.outcome, DeliveryOutcome::kPermanent);
  EXPECT_THAT(session.Transcript(), Not(Contains(HasSubstr("C: AUTH"))));
  EXPECT_THAT(session.Transcript(), Not(Contains(HasSubstr("C: MAIL FROM"))));
  ExpectNoCredentialIn(session.Transcript(), token);
}

TEST_F(SmtpClientE2eTest, PlaintextTestModeRefusesAnyToken) {
  SmtpEndpoint endpoint = Sink({});
  SmtpSession session(endpoint, Mailbox());
  session.SetBearerToken("not-a-real-token-but-never-sent");
  absl::StatusOr<ConnectReport> report = session.Connect();
  ASSERT_FALSE(report.ok());
  EXPECT_THAT(report.status().message(), HasSubstr("allow_plaintext_for_tests"));
  const std::string to = Recipient("plain");
  const SendResult sent = session.Send(Mailbox(), {to}, Message(to, "x", "x\r\n"));
  EXPECT_FALSE(sent.ok);
  EXPECT_THAT(session.Transcript(), IsEmpty());  // nothing was even attempted
}

struct SinkFault {
  std::vector<std::string> options;
  fc::FailureCause cause;
  DeliveryOutcome outcome;
  int code;  // the failing reply's code; 0 for none
};

TEST_F(SmtpClientE2eTest, SmtpSinkFaultsAreClassified) {
  const std::vector<SinkFault> faults = {
      {{"-Q", "MAIL"}, fc::FAILURE_CAUSE_SMTP_TRANSIENT, DeliveryOutcome::kTransient, 421},
      {{"-r", "MAIL"}, fc::FAILURE_CAUSE_SMTP_TRANSIENT, DeliveryOutcome::kTransient, 450},
      {{"-f", "RCPT"}, fc::FAILURE_CAUSE_RECIPIENT_REJECTED, DeliveryOutcome::kPermanent, 500},
      {{"-r", "RCPT"}, fc::FAILURE_CAUSE_SMTP_TRANSIENT, DeliveryOutcome::kTransient, 450},
      {{"-f", "DATA"}, fc::FAILURE_CAUSE_SMTP_PERMANENT, DeliveryOutcome::kPermanent, 500},
      {{"-q", "DATA"}, fc::FAILURE_CAUSE_CONNECTION_LOST, DeliveryOutcome::kTransient, 0},
      {{"-b", "432 4.3.2 STOREDRV.ClientSubmit; sender thread limit exceeded", "-r", "MAIL"},
       fc::FAILURE_CAUSE_CONCURRENT_CONNECTION_LIMIT,
       DeliveryOutcome::kTransient,
       432},
      {{"-B",
        "554 5.2.0 STOREDRV.Submission.Exception:SubmissionQuotaExceededException; Failed to "
        "process message due to a permanent exception",
        "-f", "."},
       fc::FAILURE_CAUSE_SUBMISSION_QUOTA_EXCEEDED,
       DeliveryOutcome::kQuotaExceeded,
       554},
      {{"-B", "554 5.2.2 mailbox full; STOREDRV.Submission.Exception:QuotaExceededException", "-f",
        "."},
       fc::FAILURE_CAUSE_MAILBOX_FULL,
       DeliveryOutcome::kPermanent,
       554},
      {{"-B", "552 5.3.4 Message size exceeds fixed maximum message size", "-f", "MAIL"},
       fc::FAILURE_CAUSE_MESSAGE_TOO_LARGE,
       DeliveryOutcome::kPermanent,
       552},
      {{"-B", "550 5.7.60 SMTP; Client does not have permissions to send as this sender", "-f",
        "MAIL"},
       fc::FAILURE_CAUSE_SEND_AS_DENIED,
       DeliveryOutcome::kPermanent,
       550},
      {{"-B", "530 5.7.57 Client not authenticated to send mail", "-f", "MAIL"},
       fc::FAILURE_CAUSE_CLIENT_NOT_AUTHENTICATED,
       DeliveryOutcome::kPermanent,
       530},
      {{"-b", "421 4.7.66 TLS 1.0 and 1.1 are not supported.", "-r", "CONNECT"},
       fc::FAILURE_CAUSE_SMTP_TRANSIENT,
       DeliveryOutcome::kTransient,
       421},
  };
  for (const SinkFault& fault : faults) {
    const std::string options = absl::StrJoin(fault.options, " ");
    SCOPED_TRACE(options);
    SmtpSession session(Sink(fault.options), Mailbox());
    const std::string to = Recipient("sink");
    const SendResult sent = session.Send(Mailbox(), {to}, Message(to, "sink", "x\r\n"));
    EXPECT_FALSE(sent.ok);
    EXPECT_EQ(sent.diagnosis.cause(), fault.cause) << FormatDiagnosis(sent.diagnosis) << "\n"
                                                   << absl::StrJoin(session.Transcript(), "\n");
    EXPECT_EQ(sent.outcome, fault.outcome);
    EXPECT_EQ(sent.reply.code, fault.code);
    EXPECT_EQ(sent.diagnosis.smtp_code(), fault.code);
    if (fault.code != 0) {
      EXPECT_EQ(sent.diagnosis.raw_reply(), sent.reply.raw);
    }
    for (const std::string& option : fault.options) {
      if (absl::StrContains(option, ' ')) {
        EXPECT_EQ(sent.reply.raw, option);  // the reply text as the server sent it
      }
    }
  }
  // And without a fault, the plaintext test mode delivers.
  SmtpSession session(Sink({}), Mailbox());
  const std::string to = Recipient("sink-ok");
  const SendResult sent = session.Send(Mailbox(), {to}, Message(to, "sink", "x\r\n"));
  EXPECT_TRUE(sent.ok) << FormatDiagnosis(sent.diagnosis);
  EXPECT_EQ(sent.reply.code, 250);
}

TEST_F(SmtpClientE2eTest, MessagesPerSecondOverOneConnection) {
  constexpr int kReused = 100;
  constexpr int kFresh = 20;
  const std::string to = Recipient("rate");
  const std::string body = absl::StrCat(std::string(70, 'x'), "\r\n");
  SmtpSession session(Trusted(), Mailbox());
  session.SetBearerToken(Token());

  int new_connections = 0;
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < kReused; ++i) {
    const SendResult sent = session.Send(Mailbox(), {to}, Message(to, absl::StrCat(i), body));
    ASSERT_TRUE(sent.ok) << i << ": " << FormatDiagnosis(sent.diagnosis);
    new_connections += sent.new_connection ? 1 : 0;
  }
  const double reused_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(new_connections, 1);

  start = std::chrono::steady_clock::now();
  for (int i = 0; i < kFresh; ++i) {
    session.Close();
    const SendResult sent = session.Send(Mailbox(), {to}, Message(to, absl::StrCat(i), body));
    ASSERT_TRUE(sent.ok) << i << ": " << FormatDiagnosis(sent.diagnosis);
    EXPECT_TRUE(sent.new_connection);
  }
  const double fresh_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  std::printf(
      "Throughput into the testbed's Postfix: %d messages over one connection in %.2f s = "
      "%.1f messages/s; %d messages with a new connection each (TCP, STARTTLS, XOAUTH2) in "
      "%.2f s = %.1f messages/s\n",
      kReused, reused_seconds, kReused / reused_seconds, kFresh, fresh_seconds,
      kFresh / fresh_seconds);
  RecordProperty("messages_per_second_reused", static_cast<int>(kReused / reused_seconds));
  RecordProperty("messages_per_second_fresh", static_cast<int>(kFresh / fresh_seconds));
  EXPECT_THAT(testbed().WaitForDelivered(to, kReused + kFresh, absl::Seconds(60)),
              SizeIs(kReused + kFresh));
}

}  // namespace
}  // namespace mailroom
