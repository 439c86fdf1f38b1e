// SmtpSession's checks that need no real server: the test-only plaintext mode never takes a
// token, bad envelopes and trust settings fail with a Diagnosis before any connection, a token
// is registered for redaction as soon as it is set, and Close() returns only once the server
// has ended the session (a scripted plaintext server on loopback). (Everything else with a
// server is in tests/e2e/smtp_client_e2e_test.cc, against the real testbed.)
#include "common/mail/smtp_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/time/clock.h"

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

// One plaintext SMTP session on loopback, scripted: greeting, 250 to anything, 221 to QUIT;
// after the 221 it takes `linger` before it closes the connection, as a busy server may
// before it counts the session as ended.
class LingeringSmtpServer {
 public:
  explicit LingeringSmtpServer(absl::Duration linger) {
    listen_fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof address;
    if (bind(listen_fd_, reinterpret_cast<sockaddr*>(&address), length) != 0 ||
        listen(listen_fd_, 1) != 0 ||
        getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
      ADD_FAILURE() << "cannot listen on loopback";
      return;
    }
    port_ = ntohs(address.sin_port);
    thread_ = std::thread([this, linger] { Serve(linger); });
  }
  ~LingeringSmtpServer() {
    if (thread_.joinable()) thread_.join();
    close(listen_fd_);
  }
  int port() const { return port_; }
  bool closed() const { return closed_.load(); }

 private:
  void Serve(absl::Duration linger) {
    const int fd = accept(listen_fd_, nullptr, nullptr);
    if (fd < 0) return;
    Say(fd, "220 lingering.test ESMTP\r\n");
    std::string pending;
    char buffer[512];
    ssize_t n;
    while ((n = read(fd, buffer, sizeof buffer)) > 0) {
      pending.append(buffer, static_cast<size_t>(n));
      for (size_t end; (end = pending.find("\r\n")) != std::string::npos;) {
        const std::string line = pending.substr(0, end);
        pending.erase(0, end + 2);
        if (absl::StartsWithIgnoreCase(line, "QUIT")) {
          Say(fd, "221 2.0.0 Bye\r\n");
          absl::SleepFor(linger);
          closed_ = true;
          close(fd);
          return;
        }
        Say(fd, "250 2.0.0 Ok\r\n");
      }
    }
    closed_ = true;
    close(fd);
  }
  static void Say(int fd, const std::string& reply) {
    if (write(fd, reply.data(), reply.size()) != static_cast<ssize_t>(reply.size())) {
      ADD_FAILURE() << "write to the client failed";
    }
  }

  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> closed_{false};
  std::thread thread_;
};

// A slot released, or a new connection opened, right after Close() must not meet a server
// still counting this session: Close() waits for the server's end of the connection.
TEST(SmtpSession, CloseReturnsOnceTheServerHasEndedTheSession) {
  LingeringSmtpServer server(absl::Milliseconds(300));
  SmtpEndpoint endpoint;
  endpoint.host = "127.0.0.1";
  endpoint.port = server.port();
  endpoint.connect_timeout = absl::Seconds(5);
  endpoint.allow_plaintext_for_tests = true;
  SmtpSession session(endpoint, "noreply@example.test");
  absl::StatusOr<ConnectReport> report = session.Connect();
  ASSERT_TRUE(report.ok()) << report.status();
  ASSERT_FALSE(server.closed());
  session.Close();
  EXPECT_TRUE(server.closed()) << "Close() returned while the server still held the session";
}

}  // namespace
}  // namespace mailroom
