// Tests GraphSubmitter and TransportSubmitterFactory.
#include "common/node/graph_submitter.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/fake_clock.h"
#include "tests/testing/fake_http_transport.h"

namespace mailroom {
namespace {

namespace v1 = ::mailroom::broker::v1;
namespace fc = ::mailroom::common::v1;
using ::testing::Contains;
using ::testing::Pair;

constexpr char kMessage[] =
    "From: noreply@example.test\r\nTo: guest@example.test\r\nSubject: hi\r\n\r\nbody\r\n";

// A submitter that only says it was made (the SMTP side of the factory).
class MarkerSubmitter final : public MailSubmitter {
 public:
  void SetBearerToken(std::string) override {}
  SendResult Send(const std::string&, const std::vector<std::string>&, const std::string&,
                  absl::Duration) override {
    return SendResult();
  }
  void Close() override {}
};

class TransportSubmitterFactoryTest : public ::testing::Test {
 protected:
  SubmitterFactory Factory() {
    return TransportSubmitterFactory(
        &clock_,
        [this](const SubmissionGrant&) -> std::unique_ptr<MailSubmitter> {
          ++smtp_made_;
          return std::make_unique<MarkerSubmitter>();
        },
        [this](const SubmissionGrant& grant) -> std::unique_ptr<HttpTransport> {
          transport_grants_.push_back(grant.graph_endpoint);
          return std::make_unique<testing::ForwardingHttpTransport>(&http_);
        });
  }

  SubmissionGrant GraphGrant() {
    SubmissionGrant grant;
    grant.transport = v1::MAIL_TRANSPORT_GRAPH;
    grant.graph_endpoint = "https://graph.test:8443";
    grant.mailbox = "noreply@example.test";
    grant.connection_timeout = absl::Seconds(7);
    return grant;
  }

  FakeClock clock_;
  testing::FakeHttpTransport http_;
  int smtp_made_ = 0;
  std::vector<std::string> transport_grants_;
};

TEST_F(TransportSubmitterFactoryTest, AnSmtpGrantGetsTheSmtpSubmitter) {
  SubmissionGrant grant;
  grant.transport = v1::MAIL_TRANSPORT_SMTP;
  std::unique_ptr<MailSubmitter> submitter = Factory()(grant);
  ASSERT_NE(submitter, nullptr);
  EXPECT_EQ(smtp_made_, 1);
  EXPECT_TRUE(transport_grants_.empty());
  EXPECT_EQ(dynamic_cast<GraphSubmitter*>(submitter.get()), nullptr);
}

TEST_F(TransportSubmitterFactoryTest, AGraphGrantSendsThroughGraph) {
  std::unique_ptr<MailSubmitter> submitter = Factory()(GraphGrant());
  ASSERT_NE(dynamic_cast<GraphSubmitter*>(submitter.get()), nullptr);
  EXPECT_EQ(smtp_made_, 0);
  EXPECT_EQ(transport_grants_, std::vector<std::string>{"https://graph.test:8443"});

  submitter->SetBearerToken("graph-token-abcdef");
  HttpResponse accepted;
  accepted.status = 202;
  http_.Enqueue(accepted);
  const SendResult sent = submitter->Send("noreply@example.test", {"guest@example.test"},
                                          kMessage, absl::Minutes(1));
  EXPECT_TRUE(sent.ok);
  EXPECT_EQ(sent.outcome, DeliveryOutcome::kDelivered);
  ASSERT_EQ(http_.request_count(), 1);
  const HttpRequest request = http_.requests()[0];
  EXPECT_EQ(request.url, "https://graph.test:8443/v1.0/users/noreply%40example.test/sendMail");
  EXPECT_EQ(request.timeout, absl::Seconds(7));  // the grant's connection timeout
  EXPECT_THAT(request.headers, Contains(Pair("Authorization", "Bearer graph-token-abcdef")));
  std::string decoded;
  ASSERT_TRUE(absl::Base64Unescape(request.form_body, &decoded));
  EXPECT_EQ(decoded, kMessage);
}

TEST_F(TransportSubmitterFactoryTest, ThrottlingIsATransientOutcomeWithRetryAfter) {
  std::unique_ptr<MailSubmitter> submitter = Factory()(GraphGrant());
  http_.EnqueueJson(429, R"({"error":{"code":"ApplicationThrottled","message":"slow"}})", "30");
  const SendResult sent = submitter->Send("noreply@example.test", {"guest@example.test"},
                                          kMessage, absl::Minutes(1));
  EXPECT_FALSE(sent.ok);
  EXPECT_EQ(sent.outcome, DeliveryOutcome::kTransient);
  EXPECT_EQ(sent.diagnosis.cause(), fc::FAILURE_CAUSE_GRAPH_THROTTLED);
  EXPECT_EQ(sent.diagnosis.retry_after().seconds(), 30);
}

TEST_F(TransportSubmitterFactoryTest, AnEmptyGraphEndpointMeansMicrosoftGraph) {
  SubmissionGrant grant = GraphGrant();
  grant.graph_endpoint.clear();
  std::unique_ptr<MailSubmitter> submitter = Factory()(grant);
  HttpResponse accepted;
  accepted.status = 202;
  http_.Enqueue(accepted);
  submitter->Send("", {"guest@example.test"}, kMessage, absl::Minutes(1));
  EXPECT_EQ(http_.requests()[0].url,
            "https://graph.microsoft.com/v1.0/users/noreply%40example.test/sendMail");
}

}  // namespace
}  // namespace mailroom
