// The Graph transport end to end (issue 13), every piece its own process: the real testbed
// (oidc-provider issuing Graph tokens, the Graph-shaped sendMail endpoint checking them by
// introspection and handing accepted mail to Postfix), the real mailroom-broker configured with
// transport GRAPH, and a real mailroom-psn. A self-registered guest's credentials arrive in the
// Maildir through Graph (the endpoint's log has the 202 with the Message-ID); a 429 with
// Retry-After holds the message, which goes out once the throttling ends; Test Connection
// checks the Graph token and the mailbox through Graph and sends its test message there, and
// names an application access policy that leaves the mailbox out.
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/mailroom/psn/v1/psn.grpc.pb.h"
#include "tests/testing/broker_harness.h"
#include "tests/testing/node_harness.h"
#include "tests/testing/process.h"
#include "tests/testing/test_certs.h"
#include "tests/testing/testbed.h"

namespace mailroom {
namespace {

namespace v1 = ::mailroom::psn::v1;
namespace bv1 = ::mailroom::broker::v1;
using ::mailroom::testing::BrokerHarness;
using ::mailroom::testing::NodeHarness;
using ::mailroom::testing::NodeSpec;
using ::mailroom::testing::ReadAll;
using ::mailroom::testing::Testbed;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr absl::Duration kDelivery = absl::Seconds(60);

std::unique_ptr<grpc::ClientContext> Context() {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(20)));
  return context;
}

v1::NotifySelfRegistrationRequest Registration(const std::string& username,
                                               const std::string& address) {
  v1::NotifySelfRegistrationRequest request;
  v1::Guest* guest = request.mutable_guest();
  guest->set_username(username);
  guest->set_password(absl::StrCat("Pw-", username, "-8kQ"));
  guest->set_first_name("Ada");
  guest->set_last_name("Graph");
  guest->mutable_email()->set_address(address);
  const int64_t now = absl::ToUnixSeconds(absl::Now());
  guest->mutable_valid_from()->set_seconds(now);
  guest->mutable_valid_until()->set_seconds(now + 86400);
  request.set_portal_id("lobby");
  request.set_idempotency_key(absl::StrCat("graph-", username));
  return request;
}

// The Message-ID header of a delivered message.
std::string MessageId(const std::string& maildir_message) {
  for (absl::string_view line : absl::StrSplit(maildir_message, '\n')) {
    if (absl::StartsWithIgnoreCase(line, "Message-ID:")) {
      return std::string(absl::StripAsciiWhitespace(line.substr(11)));
    }
  }
  return "";
}

class GraphE2eTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    absl::StatusOr<std::unique_ptr<Testbed>> testbed = Testbed::Start();
    ASSERT_TRUE(testbed.ok()) << testbed.status();
    testbed_ = testbed->release();
    certs_ = new std::string(mailroom::testing::MakeTestCerts(
        "certs", "mailroom cluster CA", "broker:broker psn1:psn portal:portal admin:admin"));
    absl::StatusOr<std::unique_ptr<BrokerHarness>> broker = BrokerHarness::Start(
        absl::StrCat(getenv("TEST_TMPDIR"), "/broker"), *certs_, *testbed_,
        "send_limits { messages_per_minute: 100000 recipients_per_day: 100000 }");
    ASSERT_TRUE(broker.ok()) << broker.status();
    broker_ = broker->release();
    // Test Connection (through Graph) passes, then the settings are saved.
    absl::Status configured = broker_->Configure(GraphSettings());
    ASSERT_TRUE(configured.ok()) << configured;
    NodeSpec spec;
    spec.binary = "psn/mailroom-psn";
    spec.role = "ROLE_PSN";
    spec.node_name = "psn1";
    spec.dir = absl::StrCat(getenv("TEST_TMPDIR"), "/psn1");
    spec.certs = *certs_;
    spec.broker_target = broker_->target();
    spec.extra_config = absl::StrCat(
        // One connection: the mailbox keeps slots free for Test Connection (3 in all).
        "delivery { smtp_connections: 1 backoff_initial { seconds: 1 } "
        "backoff_max { seconds: 2 } }\n"
        "psn { guest_email_settings { notifications_enabled: true default_from { address: \"",
        testbed_->Env("MAILBOX"), "\" display_name: \"Guest Access\" } } }\n");
    absl::StatusOr<std::unique_ptr<NodeHarness>> node = NodeHarness::Start(spec);
    ASSERT_TRUE(node.ok()) << node.status();
    psn1_ = node->release();
  }

  static void TearDownTestSuite() {
    delete psn1_;
    delete broker_;
    delete testbed_;
  }

  static bv1::SmtpSettings GraphSettings() {
    bv1::SmtpSettings settings = BrokerHarness::TestbedSettings(*testbed_);
    settings.set_transport(bv1::MAIL_TRANSPORT_GRAPH);
    settings.set_graph_endpoint(testbed_->Env("GRAPH_URL_BASE"));
    return settings;
  }

  static std::vector<std::string> Steps(const bv1::TestConnectionReport& report) {
    std::vector<std::string> out;
    for (const bv1::TestStep& step : report.steps()) {
      out.push_back(absl::StrCat(bv1::TestStepKind_Name(step.kind()), " ",
                                 bv1::TestStepStatus_Name(step.status())));
    }
    return out;
  }

  static std::string Register(const std::string& username, const std::string& address) {
    v1::NotifySelfRegistrationResponse response;
    const grpc::Status status =
        v1::GuestNotifications::NewStub(psn1_->ChannelAs("portal"))
            ->NotifySelfRegistration(Context().get(), Registration(username, address), &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response.notification().message_id();
  }

  // The Graph endpoint's request log.
  static std::string GraphLog() { return ReadAll(testbed_->Env("GRAPH_LOG")); }

  static Testbed* testbed_;
  static std::string* certs_;
  static BrokerHarness* broker_;
  static NodeHarness* psn1_;
};

Testbed* GraphE2eTest::testbed_ = nullptr;
std::string* GraphE2eTest::certs_ = nullptr;
BrokerHarness* GraphE2eTest::broker_ = nullptr;
NodeHarness* GraphE2eTest::psn1_ = nullptr;

TEST_F(GraphE2eTest, AGuestsCredentialsGoOutThroughGraph) {
  const std::string to = "graph-guest@example.test";
  const std::string message_id = Register("ada", to);
  const std::vector<std::string> delivered = testbed_->WaitForDelivered(to, 1, kDelivery);
  ASSERT_EQ(delivered.size(), 1u) << ReadAll(psn1_->log_path()) << GraphLog();
  EXPECT_EQ(MessageId(delivered[0]), "<" + message_id + ">");
  EXPECT_THAT(delivered[0], HasSubstr("Pw-ada-8kQ"));
  // Graph took it (202), for the mailbox, with that Message-ID; SMTP was not used.
  const std::string log = GraphLog();
  EXPECT_THAT(log, HasSubstr(absl::StrCat("mailbox=", testbed_->Env("MAILBOX"), " status=202")));
  EXPECT_THAT(log, HasSubstr(absl::StrCat("message_id=<", message_id, ">")));
  // The token never reaches a log: the node's, the broker's or the endpoint's.
  EXPECT_THAT(ReadAll(psn1_->log_path()), Not(HasSubstr("Bearer ")));
  EXPECT_THAT(log, Not(HasSubstr("Bearer")));
}

TEST_F(GraphE2eTest, ThrottlingWithRetryAfterHoldsTheMessageUntilItEnds) {
  const std::string fault = testbed_->Env("GRAPH_FAULT_FILE");
  std::ofstream(fault) << R"({"status":429,"code":"ApplicationThrottled",)"
                       << R"("message":"Application is over its MailboxConcurrency limit.",)"
                       << R"("retry_after":3})";
  const std::string to = "graph-throttled@example.test";
  const std::string message_id = Register("ben", to);
  // Refused while the fault lasts (the node retries no sooner than Retry-After says).
  for (absl::Time deadline = absl::Now() + absl::Seconds(20);
       absl::Now() < deadline && !absl::StrContains(GraphLog(), "status=429");) {
    absl::SleepFor(absl::Milliseconds(200));
  }
  ASSERT_THAT(GraphLog(), HasSubstr("status=429 code=ApplicationThrottled"));
  absl::SleepFor(absl::Seconds(2));
  std::remove(fault.c_str());
  const std::vector<std::string> delivered = testbed_->WaitForDelivered(to, 1, kDelivery);
  ASSERT_EQ(delivered.size(), 1u) << ReadAll(psn1_->log_path()) << GraphLog();
  EXPECT_EQ(MessageId(delivered[0]), "<" + message_id + ">");
}

TEST_F(GraphE2eTest, TestConnectionChecksTheTokenAndTheMailboxAndSendsThroughGraph) {
  const std::string to = "graph-test-connection@example.test";
  absl::StatusOr<bv1::TestConnectionReport> report = broker_->TestConnection(GraphSettings(), to);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_TRUE(report->passed()) << report->DebugString();
  EXPECT_THAT(Steps(*report),
              ::testing::ElementsAre("TEST_STEP_KIND_TOKEN_REQUEST TEST_STEP_STATUS_PASSED",
                                     "TEST_STEP_KIND_GRAPH_MAILBOX TEST_STEP_STATUS_PASSED",
                                     "TEST_STEP_KIND_SEND_TEST_MESSAGE TEST_STEP_STATUS_PASSED"));
  const std::vector<std::string> delivered = testbed_->WaitForDelivered(to, 1, kDelivery);
  ASSERT_EQ(delivered.size(), 1u) << GraphLog();
  EXPECT_EQ(MessageId(delivered[0]), "<" + report->test_message_id() + ">");
}

// The other app's token is for another mailbox: Graph refuses it as an application access
// policy would, and Test Connection names that at the mailbox step.
TEST_F(GraphE2eTest, TestConnectionNamesAnApplicationAccessPolicyRefusal) {
  bv1::SmtpSettings settings = GraphSettings();
  settings.set_client_id(testbed_->Env("OTHER_CLIENT_ID"));
  settings.mutable_client_secret()->set_secret(testbed_->Env("OTHER_CLIENT_SECRET"));
  absl::StatusOr<bv1::TestConnectionReport> report = broker_->TestConnection(settings);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_FALSE(report->passed());
  EXPECT_EQ(report->failed_step(), bv1::TEST_STEP_KIND_GRAPH_MAILBOX);
  EXPECT_EQ(report->diagnosis().cause(),
            ::mailroom::common::v1::FAILURE_CAUSE_GRAPH_APPLICATION_ACCESS_POLICY);
}

}  // namespace
}  // namespace mailroom
