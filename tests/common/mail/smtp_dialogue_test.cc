#include "common/mail/smtp_dialogue.h"

#include "absl/strings/str_join.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mailroom::smtp_internal {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

void Server(Recorder& r, absl::string_view lines) { r.OnDebug(CURLINFO_HEADER_IN, lines); }
void Client(Recorder& r, absl::string_view line) { r.OnDebug(CURLINFO_HEADER_OUT, line); }

TEST(SmtpDialogue, RecordsExchangesAndRedactsCredentials) {
  Recorder r("smtp.example:587");
  Server(r, "220 ready\r\n");
  Client(r, "EHLO node\r\n");
  Server(r, "250-smtp.example\r\n250 AUTH XOAUTH2\r\n");
  Client(r, "AUTH XOAUTH2 dXNlcj1zZWNyZXQ=\r\n");
  Server(r, "334 eyJzdGF0dXMiOiI0MDEifQ==\r\n");
  Client(r, "secret-sasl-response\r\n");
  Server(r, "535 5.7.3 Authentication unsuccessful\r\n");
  EXPECT_THAT(r.transcript(),
              ElementsAre("S: 220 ready", "C: EHLO node", "S: 250-smtp.example",
                          "S: 250 AUTH XOAUTH2", "C: AUTH XOAUTH2 [REDACTED]",
                          "S: 334 eyJzdGF0dXMiOiI0MDEifQ==", "C: [REDACTED]",
                          "S: 535 5.7.3 Authentication unsuccessful"));
  EXPECT_THAT(absl::StrJoin(r.transcript(), "\n"), Not(HasSubstr("secret")));
  ASSERT_EQ(r.exchanges().size(), 4u);
  EXPECT_EQ(r.exchanges()[0].stage, SmtpStage::kGreeting);
  EXPECT_EQ(r.Find(SmtpStage::kEhlo, false)->reply.code, 250);
  EXPECT_TRUE(r.AuthSent());
  EXPECT_EQ(r.FailingExchange()->reply.code, 535);
  EXPECT_EQ(r.FailingExchange()->stage, SmtpStage::kAuth);
  r.Reset();
  EXPECT_TRUE(r.transcript().empty());
  EXPECT_FALSE(r.AuthSent());
}

// Through a proxy libcurl first sends CONNECT (one chunk) and gets the proxy's answer line by
// line up to an empty one; only then does the SMTP dialogue begin.
TEST(SmtpDialogue, AProxysConnectIsKeptApartAndItsCredentialsRedacted) {
  Recorder r("smtp.example:587");
  Client(r,
         "CONNECT smtp.example:587 HTTP/1.1\r\nHost: smtp.example:587\r\n"
         "Proxy-Authorization: Basic cHJveHl1c2VyOnMzY3JldA==\r\n"
         "User-Agent: curl/7.88.1\r\n\r\n");
  Server(r, "HTTP/1.0 200 Connection established\r\n");
  Server(r, "Proxy-agent: tinyproxy/1.11.1\r\n");
  Server(r, "\r\n");
  Server(r, "220 ready\r\n");
  Client(r, "EHLO node\r\n");
  Server(r, "250 smtp.example\r\n");
  EXPECT_THAT(r.transcript(),
              ElementsAre("C: CONNECT smtp.example:587 HTTP/1.1", "C: Host: smtp.example:587",
                          "C: Proxy-Authorization: [REDACTED]", "C: User-Agent: curl/7.88.1",
                          "S: HTTP/1.0 200 Connection established",
                          "S: Proxy-agent: tinyproxy/1.11.1", "S: 220 ready", "C: EHLO node",
                          "S: 250 smtp.example"));
  EXPECT_EQ(r.proxy_reply(), "HTTP/1.0 200 Connection established");
  ASSERT_EQ(r.exchanges().size(), 2u);
  EXPECT_EQ(r.exchanges()[0].stage, SmtpStage::kGreeting);
  EXPECT_EQ(r.exchanges()[0].reply.code, 220);
  EXPECT_EQ(r.FailingExchange(), nullptr);
}

TEST(SmtpDialogue, AProxysRefusalIsNoSmtpExchange) {
  Recorder r("smtp.example:587");
  Client(r, "CONNECT smtp.example:587 HTTP/1.1\r\nHost: smtp.example:587\r\n\r\n");
  Server(r, "HTTP/1.1 403 Access violation\r\n");
  Server(r, "Server: tinyproxy/1.11.1\r\n");
  Server(r, "\r\n");
  EXPECT_EQ(r.proxy_reply(), "HTTP/1.1 403 Access violation");
  EXPECT_TRUE(r.exchanges().empty());
  EXPECT_EQ(r.FailingExchange(), nullptr);
  r.Reset();
  EXPECT_TRUE(r.proxy_reply().empty());
}

TEST(SmtpDialogue, MessageDataIsCountedNotRecorded) {
  Recorder r("mx");
  Client(r, "DATA\r\n");
  Server(r, "354 go ahead\r\n");
  r.OnDebug(CURLINFO_DATA_OUT, "Subject: your password is hunter2\r\n");
  r.OnDebug(CURLINFO_DATA_OUT, ".\r\n");
  Server(r, "250 2.0.0 queued\r\n");
  EXPECT_THAT(r.transcript(), ElementsAre("C: DATA", "S: 354 go ahead",
                                          "C: [38 bytes of message data]", "S: 250 2.0.0 queued"));
  EXPECT_EQ(r.FailingExchange(), nullptr);
}

TEST(SmtpDialogue, PrefersARetryableRecipientRefusal) {
  Recorder r("mx");
  Client(r, "RCPT TO:<a@example.com>\r\n");
  Server(r, "550 5.1.1 unknown\r\n");
  Client(r, "RCPT TO:<b@example.com>\r\n");
  Server(r, "452 4.5.3 too many recipients\r\n");
  Client(r, "QUIT\r\n");
  Server(r, "221 bye\r\n");
  ASSERT_NE(r.FailingExchange(), nullptr);
  EXPECT_EQ(r.FailingExchange()->reply.code, 452);
}

TEST(SmtpDialogue, TranscriptIsBounded) {
  Recorder r("mx");
  for (size_t i = 0; i < kMaxTranscriptLines + 10; ++i) r.AddLine("* line");
  EXPECT_EQ(r.transcript().size(), kMaxTranscriptLines + 1);
  EXPECT_EQ(r.transcript().back(), "* [transcript truncated]");
}

}  // namespace
}  // namespace mailroom::smtp_internal
