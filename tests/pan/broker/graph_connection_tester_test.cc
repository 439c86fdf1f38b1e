// Tests GraphConnectionTester over a fake token endpoint and a fake Graph.
#include "pan/broker/graph_connection_tester.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/fake_clock.h"
#include "tests/testing/fake_http_transport.h"

namespace mailroom::broker {
namespace {

namespace cv1 = ::mailroom::common::v1;
using ::mailroom::testing::FakeHttpTransport;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// A JWT-shaped token whose payload is `claims` (the signature is not checked here).
std::string Jwt(const std::string& claims) {
  return absl::StrCat(absl::WebSafeBase64Escape(R"({"alg":"RS256","typ":"JWT"})"), ".",
                      absl::WebSafeBase64Escape(claims), ".c2ln");
}

// Tests only ever get here for GRAPH settings.
class UnusedSmtpTester final : public ConnectionTester {
 public:
  v1::TestConnectionReport Run(const v1::SmtpSettings&, TokenClient*, const cv1::EmailAddress*,
                               const Progress&, const TakeMailboxShare&) override {
    ++runs;
    return v1::TestConnectionReport();
  }
  int runs = 0;
};

class GraphConnectionTesterTest : public ::testing::Test {
 protected:
  GraphConnectionTesterTest()
      : tester_(
            &smtp_,
            [this](const v1::SmtpSettings& resolved)
                -> absl::StatusOr<std::unique_ptr<TokenClient>> {
              scopes_.push_back(resolved.scope());
              return std::unique_ptr<TokenClient>(std::make_unique<EntraTokenClient>(
                  TokenEndpointConfig{resolved.token_endpoint(), resolved.client_id(),
                                      resolved.scope()},
                  std::make_unique<ClientSecret>("s3cret-value"), &token_endpoint_, &clock_));
            },
            [this](const v1::SmtpSettings&) {
              return std::make_unique<::mailroom::testing::ForwardingHttpTransport>(&graph_);
            },
            &clock_) {}

  v1::SmtpSettings Settings() {
    v1::SmtpSettings settings;
    settings.set_transport(v1::MAIL_TRANSPORT_GRAPH);
    settings.set_graph_endpoint("https://graph.test");
    settings.set_username("noreply@example.test");
    settings.set_client_id("aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee");
    settings.set_token_endpoint("https://login.test/tenant/oauth2/v2.0/token");
    settings.mutable_connection_timeout()->set_seconds(10);
    return settings;
  }

  void IssueToken(const std::string& token) {
    token_endpoint_.EnqueueJson(
        200, absl::StrCat(R"({"token_type":"Bearer","expires_in":3600,"access_token":")", token,
                          R"("})"));
  }

  v1::TestConnectionReport Run(const cv1::EmailAddress* recipient = nullptr) {
    return tester_.Run(Settings(), nullptr, recipient, [](const v1::TestStep&) {},
                       [this](bool with_message) {
                         shares_.push_back(with_message);
                         return absl::OkStatus();
                       });
  }

  static std::vector<std::string> Statuses(const v1::TestConnectionReport& report) {
    std::vector<std::string> out;
    for (const v1::TestStep& step : report.steps()) {
      out.push_back(absl::StrCat(v1::TestStepKind_Name(step.kind()), " ",
                                 v1::TestStepStatus_Name(step.status())));
    }
    return out;
  }

  FakeClock clock_;
  FakeHttpTransport token_endpoint_;
  FakeHttpTransport graph_;
  UnusedSmtpTester smtp_;
  std::vector<std::string> scopes_;
  std::vector<bool> shares_;
  GraphConnectionTester tester_;
};

TEST(RolesOfToken, ReadsTheRolesClaimOfAJwt) {
  EXPECT_THAT(*RolesOfToken(Jwt(R"({"aud":"https://graph.microsoft.com","roles":["Mail.Send"]})")),
              ElementsAre("Mail.Send"));
  EXPECT_TRUE(RolesOfToken(Jwt(R"({"aud":"https://graph.microsoft.com"})"))->empty());
  EXPECT_FALSE(RolesOfToken("opaque-token").has_value());
  EXPECT_FALSE(RolesOfToken("a.%%%.c").has_value());
}

TEST_F(GraphConnectionTesterTest, EveryStepPassesAndTheTestMessageGoesThroughGraph) {
  IssueToken(Jwt(R"({"roles":["Mail.Send"]})"));
  graph_.EnqueueJson(400, R"({"error":{"code":"ErrorMimeContentInvalid","message":"empty"}})");
  HttpResponse accepted;
  accepted.status = 202;
  graph_.Enqueue(accepted);
  cv1::EmailAddress to;
  to.set_address("admin@example.test");
  const v1::TestConnectionReport report = Run(&to);
  EXPECT_TRUE(report.passed()) << report.DebugString();
  EXPECT_THAT(Statuses(report),
              ElementsAre("TEST_STEP_KIND_TOKEN_REQUEST TEST_STEP_STATUS_PASSED",
                          "TEST_STEP_KIND_GRAPH_MAILBOX TEST_STEP_STATUS_PASSED",
                          "TEST_STEP_KIND_SEND_TEST_MESSAGE TEST_STEP_STATUS_PASSED"));
  EXPECT_THAT(report.steps(0).detail(), HasSubstr("roles claim: Mail.Send"));
  EXPECT_THAT(scopes_, ElementsAre("https://graph.microsoft.com/.default"));
  EXPECT_THAT(token_endpoint_.requests()[0].form_body,
              HasSubstr("scope=https%3A%2F%2Fgraph.microsoft.com%2F.default"));
  EXPECT_THAT(shares_, ElementsAre(true));
  ASSERT_EQ(graph_.request_count(), 2);
  EXPECT_EQ(graph_.requests()[0].form_body, "");  // the probe sends nothing
  std::string sent;
  ASSERT_TRUE(absl::Base64Unescape(graph_.requests()[1].form_body, &sent));
  EXPECT_THAT(sent, HasSubstr("admin@example.test"));
  EXPECT_FALSE(report.test_message_id().empty());
  EXPECT_EQ(smtp_.runs, 0);
}

TEST_F(GraphConnectionTesterTest, ATokenWithoutMailSendFailsBeforeGraphIsAsked) {
  IssueToken(Jwt(R"({"roles":["User.Read.All"]})"));
  const v1::TestConnectionReport report = Run();
  EXPECT_FALSE(report.passed());
  EXPECT_EQ(report.failed_step(), v1::TEST_STEP_KIND_TOKEN_REQUEST);
  EXPECT_EQ(report.diagnosis().cause(), cv1::FAILURE_CAUSE_GRAPH_MAIL_SEND_NOT_GRANTED);
  EXPECT_THAT(report.steps(0).detail(), HasSubstr("roles User.Read.All"));
  EXPECT_THAT(Statuses(report),
              ElementsAre("TEST_STEP_KIND_TOKEN_REQUEST TEST_STEP_STATUS_FAILED",
                          "TEST_STEP_KIND_GRAPH_MAILBOX TEST_STEP_STATUS_SKIPPED",
                          "TEST_STEP_KIND_SEND_TEST_MESSAGE TEST_STEP_STATUS_SKIPPED"));
  EXPECT_EQ(graph_.request_count(), 0);
}

TEST_F(GraphConnectionTesterTest, AMailboxGraphRefusesIsNamed) {
  IssueToken("opaque-graph-token");
  graph_.EnqueueJson(404, R"({"error":{"code":"MailboxNotEnabledForRESTAPI","message":"x"}})");
  const v1::TestConnectionReport report = Run();
  EXPECT_FALSE(report.passed());
  EXPECT_EQ(report.failed_step(), v1::TEST_STEP_KIND_GRAPH_MAILBOX);
  EXPECT_EQ(report.diagnosis().cause(), cv1::FAILURE_CAUSE_GRAPH_MAILBOX_NOT_ENABLED);
  EXPECT_THAT(report.steps(0).detail(), HasSubstr("opaque token"));
  EXPECT_THAT(shares_, ElementsAre(false));
}

TEST_F(GraphConnectionTesterTest, SmtpSettingsGoToTheSmtpTester) {
  v1::SmtpSettings settings = Settings();
  settings.set_transport(v1::MAIL_TRANSPORT_SMTP);
  tester_.Run(settings, nullptr, nullptr, [](const v1::TestStep&) {},
              [](bool) { return absl::OkStatus(); });
  EXPECT_EQ(smtp_.runs, 1);
  EXPECT_EQ(token_endpoint_.request_count(), 0);
}

}  // namespace
}  // namespace mailroom::broker
