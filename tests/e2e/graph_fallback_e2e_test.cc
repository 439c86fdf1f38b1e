// SMTP with automatic Graph fallback end to end (issue 13, item 2), every piece its own process:
// the real testbed (oidc-provider; Postfix with Dovecot for SMTP, which answers Exchange's
// "535 5.7.139 ... SmtpClientAuthentication is disabled" while `testbed.sh smtp-auth DIR off`
// holds; the Graph-shaped endpoint, graph_server.js, handing what it accepts to Postfix), the
// real mailroom-broker configured with MAIL_TRANSPORT_SMTP_WITH_GRAPH_FALLBACK, a real
// mailroom-psn and a real mailroom-mnt whose alarm list is read as an admin reads it.
// With SMTP AUTH disabled, guest mail goes out through Graph with none lost (counted in the
// Maildir), the MnT lists MAIL_TRANSPORT_FALLBACK with the fix, and Test Connection names
// 5.7.139; once SMTP AUTH is enabled again and Test Connection passes, the mailbox is back on
// SMTP (the next mail arrives by authenticated SMTP: "with ESMTPSA" in its Received header,
// not from graph.testbed) and the alarm is cleared. Likewise when the SMTP endpoint refuses
// connections for long enough (`testbed.sh submission DIR off`) while Graph works.
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/mailroom/mnt/v1/mnt.grpc.pb.h"
#include "tests/testing/broker_harness.h"
#include "tests/testing/guest_burst.h"
#include "tests/testing/mailroomctl.h"
#include "tests/testing/node_harness.h"
#include "tests/testing/process.h"
#include "tests/testing/test_certs.h"
#include "tests/testing/testbed.h"

namespace mailroom {
namespace {

namespace bv1 = ::mailroom::broker::v1;
namespace cv1 = ::mailroom::common::v1;
namespace mv1 = ::mailroom::mnt::v1;
using ::mailroom::testing::AwaitDelivered;
using ::mailroom::testing::BrokerHarness;
using ::mailroom::testing::CtlResult;
using ::mailroom::testing::GuestBurst;
using ::mailroom::testing::GuestPsnSpec;
using ::mailroom::testing::Mailroomctl;
using ::mailroom::testing::NodeHarness;
using ::mailroom::testing::NodeSpec;
using ::mailroom::testing::ReadAll;
using ::mailroom::testing::Testbed;
using ::mailroom::testing::UnusedLoopbackPort;
using ::testing::HasSubstr;

// Generous: the machine is shared, and a fallback costs a broker round trip and a Graph token.
constexpr absl::Duration kDelivery = absl::Seconds(90);
constexpr int kGuests = 12;

std::unique_ptr<grpc::ClientContext> Context() {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(20)));
  return context;
}

// How a delivered copy reached Postfix: through the Graph endpoint (graph_server.js says
// "EHLO graph.testbed" on the plaintext listener) or by authenticated submission ("ESMTPSA":
// STARTTLS and AUTH XOAUTH2).
std::string PathOf(const std::string& maildir_message) {
  if (absl::StrContains(maildir_message, "from graph.testbed")) return "graph";
  if (absl::StrContains(maildir_message, "with ESMTPSA")) return "smtp";
  return "unknown";
}

class GraphFallbackE2eTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    absl::StatusOr<std::unique_ptr<Testbed>> testbed = Testbed::Start();
    ASSERT_TRUE(testbed.ok()) << testbed.status();
    testbed_ = testbed->release();
    certs_ = new std::string(mailroom::testing::MakeTestCerts(
        "certs", "mailroom cluster CA", "broker:broker mnt1:mnt psn1:psn portal:portal admin:admin"));
    const std::string tmp = getenv("TEST_TMPDIR");
    const int mnt_port = UnusedLoopbackPort();
    const std::string mnt_target = absl::StrCat("localhost:", mnt_port);
    absl::StatusOr<std::unique_ptr<BrokerHarness>> broker = BrokerHarness::Start(
        tmp + "/broker", *certs_, *testbed_,
        // An outage moves the mailbox after 3 connect failures over 10 s (5 over 2 minutes by
        // default), so that the test need not wait minutes.
        "send_limits { messages_per_minute: 100000 recipients_per_day: 100000 }\n"
        "fallback_connect_failures: 3 fallback_connect_outage { seconds: 10 }",
        absl::StrCat("mnt_target: \"", mnt_target, "\""));
    ASSERT_TRUE(broker.ok()) << broker.status();
    broker_ = broker->release();
    // SMTP AUTH works at first: the fallback settings' Test Connection (of SMTP) passes.
    const absl::Status configured = broker_->Configure(FallbackSettings());
    ASSERT_TRUE(configured.ok()) << configured;

    // One delivery connection each, so that Test Connection always finds one of the mailbox's
    // three slots free.
    NodeSpec mnt;
    mnt.binary = "mnt/mailroom-mnt";
    mnt.role = "ROLE_MNT";
    mnt.node_name = "mnt1";
    mnt.dir = tmp + "/mnt1";
    mnt.certs = *certs_;
    mnt.broker_target = broker_->target();
    mnt.mnt_target = mnt_target;
    mnt.port = mnt_port;
    mnt.extra_config = absl::StrCat(
        "delivery { smtp_connections: 1 backoff_initial { seconds: 1 } "
        "backoff_max { seconds: 5 } }\n"
        "mnt { alarm_settings { include_system_alarms_in_emails: true\n"
        "  sender { address: \"", testbed_->Env("MAILBOX"), "\" display_name: \"alarms\" }\n"
        "  admin_recipients { address: \"noc@example.test\" } } }\n");
    absl::StatusOr<std::unique_ptr<NodeHarness>> mnt_node = NodeHarness::Start(mnt);
    ASSERT_TRUE(mnt_node.ok()) << mnt_node.status();
    mnt_ = mnt_node->release();

    NodeSpec psn = GuestPsnSpec("psn1", tmp + "/psn1", *certs_, testbed_->Env("MAILBOX"));
    psn.broker_target = broker_->target();
    psn.mnt_target = mnt_target;
    psn.extra_config =
        absl::StrReplaceAll(psn.extra_config, {{"delivery { ", "delivery { smtp_connections: 1 "}});
    absl::StatusOr<std::unique_ptr<NodeHarness>> psn_node = NodeHarness::Start(psn);
    ASSERT_TRUE(psn_node.ok()) << psn_node.status();
    psn_ = psn_node->release();
    ctl_ = new Mailroomctl(tmp + "/ctl", *certs_,
                           absl::StrCat("broker_target: \"", broker_->target(),
                                        "\"\npsn_targets: \"", psn_->target(),
                                        "\"\nmnt_target: \"", mnt_target,
                                        "\"\nrpc_timeout { seconds: 10 }"));
  }

  static void TearDownTestSuite() {
    // SMTP back as it was (a kept testbed is easier to look at this way).
    if (testbed_ != nullptr) {
      testbed_->RunScript({"smtp-auth", testbed_->dir(), "on"});
      testbed_->RunScript({"submission", testbed_->dir(), "on"});
    }
    delete ctl_;
    delete psn_;
    delete mnt_;
    delete broker_;
    delete testbed_;
  }

  void TearDown() override {
    if (!HasFailure()) return;
    std::cerr << "broker log:\n" << ReadAll(broker_->log_path()) << "\npsn log:\n"
              << ReadAll(psn_->log_path()) << "\ngraph log:\n"
              << ReadAll(testbed_->Env("GRAPH_LOG"));
  }

  static bv1::SmtpSettings FallbackSettings() {
    bv1::SmtpSettings settings = BrokerHarness::TestbedSettings(*testbed_);
    settings.set_transport(bv1::MAIL_TRANSPORT_SMTP_WITH_GRAPH_FALLBACK);
    settings.set_graph_endpoint(testbed_->Env("GRAPH_URL_BASE"));
    return settings;
  }

  // `count` guests registered at the PSN as a portal would; every one must be acknowledged.
  static std::map<int, std::string> RegisterGuests(const std::string& tag, const std::string& to,
                                                   int count) {
    GuestBurst burst({psn_}, tag, to, count, 1, absl::Milliseconds(100));
    burst.Join();
    EXPECT_TRUE(burst.unacked().empty());
    return burst.acked();
  }

  // The MnT's alarms of MAIL_TRANSPORT_FALLBACK in `state`, as an admin lists them.
  static std::vector<mv1::Alarm> FallbackAlarms(mv1::AlarmState state) {
    mv1::ListAlarmsRequest request;
    request.add_types(mv1::ALARM_TYPE_MAIL_TRANSPORT_FALLBACK);
    request.add_states(state);
    mv1::ListAlarmsResponse response;
    const grpc::Status status = mv1::Alarms::NewStub(mnt_->ChannelAs("admin"))
                                    ->ListAlarms(Context().get(), request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return {response.alarms().begin(), response.alarms().end()};
  }

  // Waits (up to a minute) until the MnT lists `count` MAIL_TRANSPORT_FALLBACK alarms in
  // `state`; returns those it lists then.
  static std::vector<mv1::Alarm> AwaitFallbackAlarms(mv1::AlarmState state, size_t count) {
    std::vector<mv1::Alarm> alarms;
    for (absl::Time deadline = absl::Now() + absl::Seconds(60);
         absl::Now() < deadline && (alarms = FallbackAlarms(state)).size() != count;) {
      absl::SleepFor(absl::Milliseconds(250));
    }
    return alarms;
  }

  // SMTP is back: Test Connection of the mailbox's SMTP passes, the mailbox is on SMTP again
  // and no fallback alarm is active.
  static void ExpectBackOnSmtp(const std::string& test_recipient) {
    absl::StatusOr<bv1::TestConnectionReport> passed =
        broker_->TestConnection(FallbackSettings(), test_recipient);
    ASSERT_TRUE(passed.ok()) << passed.status();
    EXPECT_TRUE(passed->passed()) << passed->DebugString();
    EXPECT_THAT(ctl_->Run({"quota"}).output, HasSubstr("transport SMTP since "));
    EXPECT_THAT(AwaitFallbackAlarms(mv1::ALARM_STATE_ACTIVE, 0), ::testing::IsEmpty());
  }

  // The copies delivered to `to`, by path ("graph", "smtp").
  static std::map<std::string, int> Paths(const std::string& to) {
    std::map<std::string, int> paths;
    for (const std::string& message : testbed_->DeliveredTo(to)) ++paths[PathOf(message)];
    return paths;
  }

  static std::string PathsText(const std::string& to) {
    std::string text;
    for (const auto& [path, count] : Paths(to)) absl::StrAppend(&text, path, "=", count, " ");
    return text;
  }

  static Testbed* testbed_;
  static std::string* certs_;
  static BrokerHarness* broker_;
  static NodeHarness* mnt_;
  static NodeHarness* psn_;
  static Mailroomctl* ctl_;
};

Testbed* GraphFallbackE2eTest::testbed_ = nullptr;
std::string* GraphFallbackE2eTest::certs_ = nullptr;
BrokerHarness* GraphFallbackE2eTest::broker_ = nullptr;
NodeHarness* GraphFallbackE2eTest::mnt_ = nullptr;
NodeHarness* GraphFallbackE2eTest::psn_ = nullptr;
Mailroomctl* GraphFallbackE2eTest::ctl_ = nullptr;

// Runs first (gtest keeps the order of definition), while no node has an SMTP session open:
// an established session would outlive the listener.
TEST_F(GraphFallbackE2eTest, AnSmtpOutageThatLastsFallsBackToGraphLosingNothing) {
  // The SMTP endpoint refuses connections; the Graph endpoint (and Postfix behind it) works.
  ASSERT_EQ(testbed_->RunScript({"submission", testbed_->dir(), "off"}), 0);
  const std::string to = "fallback-outage@example.test";
  const std::map<int, std::string> acked = RegisterGuests("outage", to, 3);
  ASSERT_EQ(acked.size(), 3u);
  std::map<std::string, int> copies;
  EXPECT_EQ(AwaitDelivered(*testbed_, to, acked, kDelivery, &copies), 0);
  for (const auto& [message_id, count] : copies) EXPECT_EQ(count, 1) << message_id;
  EXPECT_EQ(Paths(to), (std::map<std::string, int>{{"graph", 3}}));
  std::cout << "Maildir, " << to << ": " << copies.size() << " of 3 delivered, by path: "
            << PathsText(to) << "\n";
  const std::vector<mv1::Alarm> raised = AwaitFallbackAlarms(mv1::ALARM_STATE_ACTIVE, 1);
  ASSERT_EQ(raised.size(), 1u);
  EXPECT_THAT(raised[0].text(), HasSubstr("the SMTP endpoint was unreachable: "));
  EXPECT_THAT(raised[0].text(), HasSubstr("connect failures in a row over "));
  EXPECT_THAT(ctl_->Run({"quota"}).output, HasSubstr("transport GRAPH since "));

  ASSERT_EQ(testbed_->RunScript({"submission", testbed_->dir(), "on"}), 0);
  ExpectBackOnSmtp("fallback-outage-test@example.test");
  EXPECT_EQ(Paths("fallback-outage-test@example.test"),
            (std::map<std::string, int>{{"smtp", 1}}));
}

TEST_F(GraphFallbackE2eTest, SmtpAuthDisabledFallsBackToGraphLosingNothingAndComesBack) {
  // 1. The tenant disables SMTP AUTH for the mailbox (before the PSN has opened an SMTP
  // session: the switch applies to new sessions, as a table Postfix reads when an smtpd
  // process starts). Guests register.
  ASSERT_EQ(testbed_->RunScript({"smtp-auth", testbed_->dir(), "off"}), 0);
  const std::string during = "fallback-during@example.test";
  std::map<int, std::string> acked = RegisterGuests("during", during, kGuests);
  ASSERT_EQ(acked.size(), static_cast<size_t>(kGuests));
  std::map<std::string, int> copies;
  // None lost: every acknowledged registration arrives, once, and through Graph.
  EXPECT_EQ(AwaitDelivered(*testbed_, during, acked, kDelivery, &copies), 0);
  EXPECT_EQ(copies.size(), static_cast<size_t>(kGuests));
  for (const auto& [message_id, count] : copies) EXPECT_EQ(count, 1) << message_id;
  EXPECT_EQ(Paths(during), (std::map<std::string, int>{{"graph", kGuests}}));
  std::cout << "Maildir, " << during << ": " << copies.size() << " of " << kGuests
            << " delivered, by path: " << PathsText(during) << "\n";
  // Postfix refused the submission with Exchange's reply, and the PSN failed nothing.
  EXPECT_THAT(ReadAll(testbed_->Env("POSTFIX_LOG")), HasSubstr("535 5.7.139"));
  const CtlResult outbox = ctl_->Run({"outbox", "list", "psn1"});
  EXPECT_THAT(outbox.output, HasSubstr(", failed 0\n"));

  // The alarm says so, with the fix; the broker shows the transport, since when and why.
  const std::vector<mv1::Alarm> raised = AwaitFallbackAlarms(mv1::ALARM_STATE_ACTIVE, 1);
  ASSERT_EQ(raised.size(), 1u);
  EXPECT_EQ(raised[0].source_node(), "broker");
  EXPECT_THAT(raised[0].text(), HasSubstr("now goes out through Microsoft Graph"));
  EXPECT_THAT(raised[0].text(), HasSubstr("535 5.7.139"));
  EXPECT_THAT(raised[0].text(),
              HasSubstr(absl::StrCat("Set-CASMailbox -Identity ", testbed_->Env("MAILBOX"),
                                     " -SmtpClientAuthenticationDisabled $false")));
  EXPECT_THAT(ctl_->Run({"alarm", "list"}).output, HasSubstr("mail-transport-fallback"));
  const CtlResult quota = ctl_->Run({"quota"});
  EXPECT_THAT(quota.output, HasSubstr("transport GRAPH since "));
  EXPECT_THAT(quota.output, HasSubstr("psn1 got"));

  // 2. Test Connection (SMTP, with a test message) names the cause.
  absl::StatusOr<bv1::TestConnectionReport> failed =
      broker_->TestConnection(FallbackSettings(), "fallback-test-1@example.test");
  ASSERT_TRUE(failed.ok()) << failed.status();
  EXPECT_FALSE(failed->passed());
  EXPECT_EQ(failed->diagnosis().cause(), cv1::FAILURE_CAUSE_SMTP_AUTH_DISABLED);
  EXPECT_THAT(failed->diagnosis().raw_reply(), HasSubstr("535 5.7.139"));
  EXPECT_THAT(failed->diagnosis().fix(), HasSubstr("SmtpClientAuthenticationDisabled $false"));
  EXPECT_THAT(ctl_->Run({"quota"}).output, HasSubstr("transport GRAPH since "));

  // 3. SMTP AUTH is enabled again; Test Connection passes, and the mailbox is back on SMTP.
  ASSERT_EQ(testbed_->RunScript({"smtp-auth", testbed_->dir(), "on"}), 0);
  ExpectBackOnSmtp("fallback-test-2@example.test");

  const std::string after = "fallback-after@example.test";
  acked = RegisterGuests("after", after, 2);
  copies.clear();
  EXPECT_EQ(AwaitDelivered(*testbed_, after, acked, kDelivery, &copies), 0);
  EXPECT_EQ(Paths(after), (std::map<std::string, int>{{"smtp", 2}}));
  std::cout << "Maildir, " << after << ": by path: " << PathsText(after) << "\n";
  EXPECT_EQ(Paths("fallback-test-2@example.test"), (std::map<std::string, int>{{"smtp", 1}}));
  EXPECT_TRUE(testbed_->DeliveredTo("fallback-test-1@example.test").empty());
}

// Per-mailbox fallback (a pool mailbox with SMTP and Graph fallback) through the real broker,
// MnT, mailroomctl and the testbed, which grants the app alerts@. Runs last: it saves settings
// with a pool, and saves the fallback settings back at its end. psn1's report of Exchange's
// 5.7.139 for the pool mailbox is sent over gRPC as psn1's delivery worker sends it
// (InvalidateAccessToken naming the mailbox); the testbed's Graph endpoint knows no pool
// mailbox, so no pool mail is delivered through Graph here. The move back is real: a Test
// Connection of alerts@ fails while the testbed disables its SMTP AUTH, and passes once enabled.
TEST_F(GraphFallbackE2eTest, APoolMailboxFallsBackAloneAndOnlyItsOwnPassedTestMovesItBack) {
  const std::string alerts = "alerts@example.test";
  bv1::SmtpSettings settings = FallbackSettings();
  bv1::PoolMailbox* pool_mailbox = settings.add_mailboxes();
  pool_mailbox->set_address(alerts);
  pool_mailbox->set_transport(bv1::MAIL_TRANSPORT_SMTP_WITH_GRAPH_FALLBACK);
  ASSERT_TRUE(broker_->Configure(settings).ok());
  // psn1's token for `mailbox`; transport UNSPECIFIED when the broker does not answer.
  auto token = [](const std::string& mailbox) {
    bv1::GetAccessTokenRequest request;
    request.set_node("psn1");
    request.set_mailbox(mailbox);
    bv1::GetAccessTokenResponse response;
    if (!broker_->StubAs("psn1")->GetAccessToken(Context().get(), request, &response).ok()) {
      response.Clear();
    }
    return response;
  };
  const bv1::GetAccessTokenResponse before = token(alerts);
  EXPECT_EQ(before.transport(), bv1::MAIL_TRANSPORT_SMTP);
  EXPECT_TRUE(before.graph_fallback());

  bv1::InvalidateAccessTokenRequest report;
  report.set_node("psn1");
  report.set_mailbox(alerts);
  report.set_token_fingerprint(before.token_fingerprint());
  report.set_smtp_code(535);
  report.set_reply_text(
      "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the "
      "Mailbox. Visit https://aka.ms/smtp_auth_disabled for more information.");
  bv1::InvalidateAccessTokenResponse reported;
  ASSERT_TRUE(broker_->StubAs("psn1")
                  ->InvalidateAccessToken(Context().get(), report, &reported)
                  .ok());
  EXPECT_EQ(token(alerts).transport(), bv1::MAIL_TRANSPORT_GRAPH);
  EXPECT_EQ(token("").transport(), bv1::MAIL_TRANSPORT_SMTP);  // the default mailbox stays
  const std::vector<mv1::Alarm> raised = AwaitFallbackAlarms(mv1::ALARM_STATE_ACTIVE, 1);
  ASSERT_EQ(raised.size(), 1u);
  EXPECT_EQ(raised[0].dedup_key(), absl::StrCat("transport-fallback/", alerts));
  EXPECT_THAT(raised[0].text(), HasSubstr(absl::StrCat("Mail from ", alerts, " now goes out")));
  EXPECT_THAT(raised[0].text(), HasSubstr(absl::StrCat("mailroomctl settings test mailbox=",
                                                       alerts, " --to=ADDRESS")));

  // The default mailbox's mail still goes out by SMTP.
  const std::string to = "pool-fallback-default@example.test";
  const std::map<int, std::string> acked = RegisterGuests("pool", to, 2);
  std::map<std::string, int> copies;
  EXPECT_EQ(AwaitDelivered(*testbed_, to, acked, kDelivery, &copies), 0);
  EXPECT_EQ(Paths(to), (std::map<std::string, int>{{"smtp", 2}}));

  // A restarted broker keeps alerts@ on Graph (the sealed state file).
  ASSERT_TRUE(broker_->Restart().ok());
  bv1::MailTransport after_restart = bv1::MAIL_TRANSPORT_UNSPECIFIED;
  for (absl::Time deadline = absl::Now() + absl::Seconds(20);
       absl::Now() < deadline &&
       (after_restart = token(alerts).transport()) == bv1::MAIL_TRANSPORT_UNSPECIFIED;) {
    absl::SleepFor(absl::Milliseconds(200));
  }
  EXPECT_EQ(after_restart, bv1::MAIL_TRANSPORT_GRAPH);

  // Test Connection of alerts@ fails while its SMTP AUTH is disabled: it stays on Graph.
  ASSERT_EQ(testbed_->RunScript({"smtp-auth", testbed_->dir(), "off", alerts}), 0);
  // (with a test message: the testbed, like Exchange's relay, says 5.7.139 at MAIL FROM)
  const CtlResult test = ctl_->Run({"settings", "test", absl::StrCat("mailbox=", alerts),
                                    "--to=pool-fallback-test-1@example.test"});
  ASSERT_EQ(testbed_->RunScript({"smtp-auth", testbed_->dir(), "on", alerts}), 0);
  EXPECT_NE(test.exit_code, 0) << test.output;
  EXPECT_THAT(test.output, HasSubstr(absl::StrCat("Mailbox: ", alerts)));
  EXPECT_THAT(test.output, HasSubstr("5.7.139"));
  EXPECT_EQ(token(alerts).transport(), bv1::MAIL_TRANSPORT_GRAPH);
  EXPECT_EQ(FallbackAlarms(mv1::ALARM_STATE_ACTIVE).size(), 1u);

  // A Test Connection of the default mailbox passing moves nothing back.
  const CtlResult default_test = ctl_->Run({"settings", "test"});
  EXPECT_EQ(default_test.exit_code, 0) << default_test.output;
  EXPECT_EQ(token(alerts).transport(), bv1::MAIL_TRANSPORT_GRAPH);

  // SMTP AUTH enabled again: alerts@'s own passed test moves it back and clears its alarm.
  const CtlResult passed = ctl_->Run({"settings", "test", absl::StrCat("mailbox=", alerts),
                                      "--to=pool-fallback-test-2@example.test"});
  EXPECT_EQ(passed.exit_code, 0) << passed.output;
  EXPECT_EQ(testbed_->WaitForDelivered("pool-fallback-test-2@example.test", 1, kDelivery).size(),
            1u);
  EXPECT_EQ(token(alerts).transport(), bv1::MAIL_TRANSPORT_SMTP);
  EXPECT_THAT(AwaitFallbackAlarms(mv1::ALARM_STATE_ACTIVE, 0), ::testing::IsEmpty());
  EXPECT_EQ(token("").transport(), bv1::MAIL_TRANSPORT_SMTP);

  ASSERT_TRUE(broker_->Configure(FallbackSettings()).ok());
}

}  // namespace
}  // namespace mailroom
