// Told before a guest notices (issue 11), end to end with the real binaries: the broker, the
// MnT (watching the PSN) and a PSN, against the testbed (oidc-provider issuing 2-minute tokens,
// Postfix, Dovecot). Every check is made where the admin would see it: the MnT's alarm list,
// the guest's Maildir, and mailroomctl.
//   - The tenant rotates the app's client secret under the running cluster: the broker's next
//     refresh raises TOKEN_ACQUISITION_FAILED naming AADSTS7000215 (and `mailroomctl status`
//     exits 1 showing it), escalated to CRITICAL once no token is left; mail queued meanwhile
//     waits; saving the new secret clears the alarm and the mail drains.
//   - Exchange answers 554 5.2.0: SEND_QUOTA_EXCEEDED with the time sending resumes; once the
//     cause is fixed, `mailroomctl quota resume` restarts sending and clears it.
//   - The PSN is killed (SIGKILL): NODE_DOWN within the configured time; restarted: cleared.
//   - The token server stops: mail flows on the valid token, a WARNING says so, and it all
//     heals by itself when the server returns.
//   - With 2-minute tokens a trickle of mail flows with one token request per half-life.
#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/mailroom/mnt/v1/mnt.grpc.pb.h"
#include "proto/mailroom/psn/v1/psn.grpc.pb.h"
#include "tests/testing/broker_harness.h"
#include "tests/testing/mailroomctl.h"
#include "tests/testing/node_harness.h"
#include "tests/testing/process.h"
#include "tests/testing/test_certs.h"
#include "tests/testing/testbed.h"

namespace mailroom {
namespace {

namespace mv1 = ::mailroom::mnt::v1;
namespace pv1 = ::mailroom::psn::v1;
using ::mailroom::testing::BrokerHarness;
using ::mailroom::testing::CtlResult;
using ::mailroom::testing::Mailroomctl;
using ::mailroom::testing::NodeHarness;
using ::mailroom::testing::NodeSpec;
using ::mailroom::testing::ReadAll;
using ::mailroom::testing::Testbed;
using ::mailroom::testing::TestbedRunfile;
using ::mailroom::testing::UnusedLoopbackPort;
using ::testing::HasSubstr;

constexpr int kTokenLifetimeSeconds = 120;  // the shortest lifetime mailroom supports
constexpr int kNodeDownAfterSeconds = 6;

std::unique_ptr<grpc::ClientContext> Context(absl::Duration timeout = absl::Seconds(30)) {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  return context;
}

class AlarmsE2eTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    setenv("TESTBED_TOKEN_TTL", absl::StrCat(kTokenLifetimeSeconds).c_str(), 1);
    absl::StatusOr<std::unique_ptr<Testbed>> testbed = Testbed::Start();
    unsetenv("TESTBED_TOKEN_TTL");
    ASSERT_TRUE(testbed.ok()) << testbed.status();
    testbed_ = testbed->release();
    certs_ = new std::string(mailroom::testing::MakeTestCerts(
        "certs", "mailroom cluster CA", "broker:broker mnt1:mnt psn1:psn portal:portal admin:admin"));
    const std::string tmp = getenv("TEST_TMPDIR");
    // The broker reports to the MnT, which takes its tokens from the broker: the MnT's port is
    // chosen first so that each can name the other.
    const int mnt_port = UnusedLoopbackPort();
    const int psn_port = UnusedLoopbackPort();
    const std::string mnt_target = absl::StrCat("localhost:", mnt_port);
    absl::StatusOr<std::unique_ptr<BrokerHarness>> broker = BrokerHarness::Start(
        tmp + "/broker", *certs_, *testbed_,
        "send_limits { messages_per_minute: 100000 recipients_per_day: 100000 }",
        absl::StrCat("mnt_target: \"", mnt_target, "\""));
    ASSERT_TRUE(broker.ok()) << broker.status();
    broker_ = broker->release();
    const absl::Status configured = broker_->Configure(BrokerHarness::TestbedSettings(*testbed_));
    ASSERT_TRUE(configured.ok()) << configured;
    configured_at_ = absl::Now();

    // Both role nodes report to the MnT and retry deliveries quickly.
    auto start_node = [&](const char* binary, const char* role, const char* name, int port,
                          const std::string& section) -> NodeHarness* {
      NodeSpec spec;
      spec.binary = binary;
      spec.role = role;
      spec.node_name = name;
      spec.dir = absl::StrCat(tmp, "/", name);
      spec.certs = *certs_;
      spec.broker_target = broker_->target();
      spec.mnt_target = mnt_target;
      spec.port = port;
      spec.extra_config = absl::StrCat(
          "delivery { backoff_initial { seconds: 1 } backoff_max { seconds: 5 } }\n", section);
      absl::StatusOr<std::unique_ptr<NodeHarness>> node = NodeHarness::Start(spec);
      EXPECT_TRUE(node.ok()) << node.status();
      return node.ok() ? node->release() : nullptr;
    };
    mnt_ = start_node(
        "mnt/mailroom-mnt", "ROLE_MNT", "mnt1", mnt_port,
        absl::StrCat(
            "mnt { alarm_settings { include_system_alarms_in_emails: true\n"
            "  sender { address: \"", testbed_->Env("MAILBOX"), "\" display_name: \"alarms\" }\n"
            "  admin_recipients { address: \"noc@example.test\" }\n"
            "  suppression_window { seconds: 5 } }\n"
            "  watched_nodes { name: \"psn1\" target: \"localhost:", psn_port,
            "\" role: ROLE_PSN }\n"
            "  node_down_after { seconds: ", kNodeDownAfterSeconds, " }\n"
            "  node_check_interval { seconds: 1 } }\n"));
    ASSERT_NE(mnt_, nullptr);
    psn_ = start_node(
        "psn/mailroom-psn", "ROLE_PSN", "psn1", psn_port,
        absl::StrCat("psn { guest_email_settings { notifications_enabled: true default_from { "
                     "address: \"",
                     testbed_->Env("MAILBOX"), "\" display_name: \"Guest Access\" } } }\n"));
    ASSERT_NE(psn_, nullptr);
    ctl_ = new Mailroomctl(absl::StrCat(tmp, "/ctl"), *certs_,
                           absl::StrCat("broker_target: \"", broker_->target(),
                                        "\"\npsn_targets: \"", psn_->target(),
                                        "\"\nmnt_target: \"", mnt_target,
                                        "\"\nrpc_timeout { seconds: 10 }"));
  }

  static void TearDownTestSuite() {
    delete ctl_;
    delete psn_;
    delete mnt_;
    delete broker_;
    delete testbed_;
  }

  void TearDown() override {
    if (!HasFailure()) return;
    std::cerr << "broker log:\n" << ReadAll(broker_->log_path()) << "\nmnt log:\n"
              << ReadAll(mnt_->log_path()) << "\npsn log:\n" << ReadAll(psn_->log_path());
  }

  // Registers a guest at the PSN; the credentials mail goes to `address`.
  static void Register(const std::string& username, const std::string& address) {
    pv1::NotifySelfRegistrationRequest request;
    pv1::Guest* guest = request.mutable_guest();
    guest->set_username(username);
    guest->set_password(absl::StrCat("Pw-", username, "-8kQ"));
    guest->set_first_name("Ming");
    guest->set_last_name("Wang");
    guest->mutable_email()->set_address(address);
    const int64_t now = absl::ToUnixSeconds(absl::Now());
    guest->mutable_valid_from()->set_seconds(now);
    guest->mutable_valid_until()->set_seconds(now + 86400);
    request.set_portal_id("lobby");
    request.set_language("en");
    request.set_idempotency_key(absl::StrCat("alarms-e2e/", username));
    pv1::NotifySelfRegistrationResponse response;
    const grpc::Status status = pv1::GuestNotifications::NewStub(psn_->ChannelAs("portal"))
                                    ->NotifySelfRegistration(Context().get(), request, &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
  }

  // The MnT's alarms of `type`, as `mailroomctl alarm list` would show them.
  static std::vector<mv1::Alarm> Alarms(mv1::AlarmType type) {
    mv1::ListAlarmsRequest request;
    request.add_types(type);
    mv1::ListAlarmsResponse response;
    const grpc::Status status =
        mv1::Alarms::NewStub(mnt_->ChannelAs("admin"))->ListAlarms(Context().get(), request,
                                                                   &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return {response.alarms().begin(), response.alarms().end()};
  }

  // Waits until an alarm of `type` satisfies `want`; returns it (empty if none did in time).
  template <typename Predicate>
  static mv1::Alarm WaitForAlarm(mv1::AlarmType type, absl::Duration timeout, Predicate want) {
    const absl::Time deadline = absl::Now() + timeout;
    while (absl::Now() < deadline) {
      for (const mv1::Alarm& alarm : Alarms(type)) {
        if (want(alarm)) return alarm;
      }
      absl::SleepFor(absl::Milliseconds(250));
    }
    return mv1::Alarm();
  }

  static Testbed* testbed_;
  static std::string* certs_;
  static BrokerHarness* broker_;
  static NodeHarness* mnt_;
  static NodeHarness* psn_;
  static Mailroomctl* ctl_;
  static absl::Time configured_at_;
};

Testbed* AlarmsE2eTest::testbed_ = nullptr;
std::string* AlarmsE2eTest::certs_ = nullptr;
BrokerHarness* AlarmsE2eTest::broker_ = nullptr;
NodeHarness* AlarmsE2eTest::mnt_ = nullptr;
NodeHarness* AlarmsE2eTest::psn_ = nullptr;
Mailroomctl* AlarmsE2eTest::ctl_ = nullptr;
absl::Time AlarmsE2eTest::configured_at_;

bool Active(const mv1::Alarm& alarm) { return alarm.state() == mv1::ALARM_STATE_ACTIVE; }

TEST_F(AlarmsE2eTest, ARotatedSecretIsAlarmedAtTheNextRefreshAndANewSecretClearsIt) {
  Register("before-rotation", "before-rotation@example.test");
  ASSERT_EQ(testbed_->WaitForDelivered("before-rotation@example.test", 1, absl::Seconds(60)).size(),
            1u);
  // The tenant rotates the secret: the broker's token stays valid, its next refresh (at half
  // the 2-minute lifetime) is refused.
  const std::string new_secret = absl::StrCat("rotated-", absl::ToUnixNanos(absl::Now()));
  ASSERT_EQ(testbed_->RunScript({"oidc-config", testbed_->dir(),
                                 absl::StrCat("CLIENT_SECRET=", new_secret)}),
            0);
  const mv1::Alarm warning = WaitForAlarm(
      mv1::ALARM_TYPE_TOKEN_ACQUISITION_FAILED, absl::Seconds(kTokenLifetimeSeconds),
      [](const mv1::Alarm& a) { return Active(a) && a.source_node() == "broker"; });
  ASSERT_FALSE(warning.id().empty()) << "no TOKEN_ACQUISITION_FAILED from the broker";
  EXPECT_THAT(warning.text(), HasSubstr("AADSTS7000215"));
  EXPECT_THAT(warning.text(), HasSubstr("Invalid client secret"));
  // Raised at the first failed refresh: half the lifetime after the token was fetched, give or
  // take the backoff's first second.
  const absl::Duration raised_after =
      absl::FromUnixSeconds(warning.first_occur_time().seconds()) - configured_at_;
  EXPECT_LT(raised_after, absl::Seconds(kTokenLifetimeSeconds * 3 / 4)) << raised_after;
  // The one status screen says so too, and its exit code tells a script an admin is needed.
  const CtlResult status = ctl_->Run({"status"});
  EXPECT_EQ(status.exit_code, 1) << status.output;
  EXPECT_THAT(status.output, HasSubstr("TOKEN_ACQUISITION_FAILED"));
  EXPECT_THAT(status.output, HasSubstr("AADSTS7000215"));

  // Once no token is left it is CRITICAL, and mail queued now waits.
  const mv1::Alarm critical = WaitForAlarm(
      mv1::ALARM_TYPE_TOKEN_ACQUISITION_FAILED, absl::Seconds(kTokenLifetimeSeconds),
      [](const mv1::Alarm& a) {
        return Active(a) && a.source_node() == "broker" &&
               a.severity() == mv1::ALARM_SEVERITY_CRITICAL;
      });
  ASSERT_FALSE(critical.id().empty());
  EXPECT_THAT(critical.text(), HasSubstr("no node can send mail"));
  // The PSN sends on its cached token until that runs out too; then it says so itself.
  const mv1::Alarm node_alarm = WaitForAlarm(
      mv1::ALARM_TYPE_TOKEN_ACQUISITION_FAILED, absl::Seconds(kTokenLifetimeSeconds),
      [](const mv1::Alarm& a) { return Active(a) && a.source_node() == "psn1"; });
  ASSERT_FALSE(node_alarm.id().empty()) << "no TOKEN_ACQUISITION_FAILED from psn1";
  EXPECT_THAT(node_alarm.text(), HasSubstr("Node psn1 has no usable access token"));
  Register("during-rotation", "during-rotation@example.test");
  absl::SleepFor(absl::Seconds(5));
  EXPECT_TRUE(testbed_->DeliveredTo("during-rotation@example.test").empty());

  // The admin enters the new secret: the alarm clears and the waiting mail goes out.
  mailroom::broker::v1::SmtpSettings settings = BrokerHarness::TestbedSettings(*testbed_);
  settings.mutable_client_secret()->set_secret(new_secret);
  const absl::Status saved = broker_->Configure(settings);
  ASSERT_TRUE(saved.ok()) << saved;
  const mv1::Alarm cleared = WaitForAlarm(
      mv1::ALARM_TYPE_TOKEN_ACQUISITION_FAILED, absl::Seconds(30), [&](const mv1::Alarm& a) {
        return a.id() == critical.id() && a.state() == mv1::ALARM_STATE_CLEARED;
      });
  EXPECT_FALSE(cleared.id().empty()) << "the broker's alarm was not cleared";
  const mv1::Alarm node_cleared = WaitForAlarm(
      mv1::ALARM_TYPE_TOKEN_ACQUISITION_FAILED, absl::Seconds(30), [&](const mv1::Alarm& a) {
        return a.id() == node_alarm.id() && a.state() == mv1::ALARM_STATE_CLEARED;
      });
  EXPECT_FALSE(node_cleared.id().empty()) << "psn1's alarm was not cleared";
  EXPECT_EQ(testbed_->WaitForDelivered("during-rotation@example.test", 1, absl::Seconds(90)).size(),
            1u);
}

TEST_F(AlarmsE2eTest, AQuotaPauseIsAlarmedWithItsEndAndQuotaResumeRestartsSending) {
  Register("over-quota", "quota@example.test");
  const mv1::Alarm paused = WaitForAlarm(mv1::ALARM_TYPE_SEND_QUOTA_EXCEEDED, absl::Seconds(60),
                                         [](const mv1::Alarm& a) { return Active(a); });
  ASSERT_FALSE(paused.id().empty()) << "no SEND_QUOTA_EXCEEDED";
  EXPECT_THAT(paused.text(), HasSubstr("paused on every node until "));
  EXPECT_THAT(paused.text(), HasSubstr("5.2.0"));
  EXPECT_THAT(paused.text(), HasSubstr("mailroomctl quota resume"));
  Register("while-paused", "while-paused@example.test");
  absl::SleepFor(absl::Seconds(5));
  EXPECT_TRUE(testbed_->DeliveredTo("while-paused@example.test").empty());

  // The cause is fixed (Exchange accepts the mailbox's mail again) and the admin resumes.
  ASSERT_EQ(testbed_->RunScript({"quota-fault", testbed_->dir(), "off"}), 0);
  mailroom::broker::v1::ResumeMailboxRequest resume;
  resume.set_mailbox(testbed_->Env("MAILBOX"));
  resume.set_reason("quota raised");
  mailroom::broker::v1::ResumeMailboxResponse resumed;
  const grpc::Status status =
      broker_->StubAs("admin")->ResumeMailbox(Context().get(), resume, &resumed);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_TRUE(resumed.was_paused());
  // Waiting mail asks again within a minute of the resume, and goes out.
  EXPECT_EQ(testbed_->WaitForDelivered("while-paused@example.test", 1, absl::Seconds(90)).size(),
            1u);
  EXPECT_EQ(testbed_->WaitForDelivered("quota@example.test", 1, absl::Seconds(30)).size(), 1u);
  const mv1::Alarm cleared = WaitForAlarm(
      mv1::ALARM_TYPE_SEND_QUOTA_EXCEEDED, absl::Seconds(10), [&](const mv1::Alarm& a) {
        return a.id() == paused.id() && a.state() == mv1::ALARM_STATE_CLEARED;
      });
  EXPECT_FALSE(cleared.id().empty());
  EXPECT_THAT(cleared.clear_reason(), HasSubstr("quota raised"));
}

TEST_F(AlarmsE2eTest, AKilledNodeIsDownWithinTheLimitAndClearsWhenItReturns) {
  psn_->Kill();
  const absl::Time killed = absl::Now();
  const mv1::Alarm down = WaitForAlarm(
      mv1::ALARM_TYPE_NODE_DOWN, absl::Seconds(kNodeDownAfterSeconds + 20),
      [](const mv1::Alarm& a) { return Active(a) && a.dedup_key() == "node-down/psn1"; });
  const absl::Duration noticed = absl::Now() - killed;
  ASSERT_FALSE(down.id().empty()) << "no NODE_DOWN for psn1";
  std::cout << "NODE_DOWN for psn1 raised " << noticed << " after SIGKILL (limit "
            << kNodeDownAfterSeconds << " s)" << std::endl;
  EXPECT_THAT(down.text(), HasSubstr("Node psn1 (ROLE_PSN"));
  EXPECT_GE(noticed, absl::Seconds(kNodeDownAfterSeconds - 1));
  ASSERT_TRUE(psn_->Restart().ok());
  const mv1::Alarm cleared = WaitForAlarm(
      mv1::ALARM_TYPE_NODE_DOWN, absl::Seconds(20), [&](const mv1::Alarm& a) {
        return a.id() == down.id() && a.state() == mv1::ALARM_STATE_CLEARED;
      });
  EXPECT_FALSE(cleared.id().empty()) << "NODE_DOWN for psn1 was not cleared";
}

// The token endpoint fails when the token is due for refresh: mail keeps flowing on the
// still-valid token, the broker says so before the token runs out, and everything resumes by
// itself when the endpoint returns. (The testbed answers as Entra does in an outage, 503
// AADSTS90033, rather than stopping the server: its MTA validates tokens by introspection at
// the same server, which Exchange does not need Entra for.)
TEST_F(AlarmsE2eTest, ATokenServerOutageIsAlarmedWhileMailFlowsAndHealsByItself) {
  ASSERT_EQ(testbed_->RunScript({"oidc-config", testbed_->dir(), "TOKEN_ENDPOINT=down"}), 0);
  const absl::Time stopped = absl::Now();
  const mv1::Alarm warning = WaitForAlarm(
      mv1::ALARM_TYPE_TOKEN_ACQUISITION_FAILED, absl::Seconds(kTokenLifetimeSeconds),
      [&](const mv1::Alarm& a) {
        return Active(a) && a.source_node() == "broker" &&
               absl::FromUnixSeconds(a.last_occur_time().seconds()) >= stopped - absl::Seconds(1);
      });
  ASSERT_FALSE(warning.id().empty()) << "no alarm while the token server is down";
  EXPECT_EQ(warning.severity(), mv1::ALARM_SEVERITY_WARNING) << warning.text();
  EXPECT_THAT(warning.text(), HasSubstr("Mail still goes out on the current token"));
  Register("token-server-down", "token-server-down@example.test");
  EXPECT_EQ(
      testbed_->WaitForDelivered("token-server-down@example.test", 1, absl::Seconds(20)).size(),
      1u)
      << "mail stopped while the token was still valid";
  ASSERT_EQ(testbed_->RunScript({"oidc-config", testbed_->dir(), "TOKEN_ENDPOINT=up"}), 0);
  const mv1::Alarm cleared = WaitForAlarm(
      mv1::ALARM_TYPE_TOKEN_ACQUISITION_FAILED, absl::Seconds(120), [&](const mv1::Alarm& a) {
        return a.id() == warning.id() && a.state() == mv1::ALARM_STATE_CLEARED;
      });
  EXPECT_FALSE(cleared.id().empty()) << "the alarm did not clear when the server returned";
  Register("token-server-back", "token-server-back@example.test");
  EXPECT_EQ(
      testbed_->WaitForDelivered("token-server-back@example.test", 1, absl::Seconds(60)).size(),
      1u);
}

// Short-lived tokens: a steady trickle of guest mail goes out throughout, and the token
// endpoint sees about one request per half-lifetime, counted at the endpoint. (Before, tokens
// under 10 minutes were never good enough for the broker: it fetched again on every request.)
TEST_F(AlarmsE2eTest, TwoMinuteTokensCarryATrickleOfMailWithOneFetchPerHalfLife) {
  auto token_requests = [] {
    std::string out;
    testbed_->RunScript({"token-count", testbed_->dir()}, &out);
    return std::atoi(out.c_str());
  };
  const int requests_before = token_requests();
  const absl::Time start = absl::Now();
  constexpr int kMails = 16;
  for (int i = 0; i < kMails; ++i) {
    Register(absl::StrCat("trickle-", i), absl::StrCat("trickle-", i, "@example.test"));
    absl::SleepFor(absl::Seconds(12));  // 16 × 12 s: more than three half-lives
  }
  for (int i = 0; i < kMails; ++i) {
    const std::string to = absl::StrCat("trickle-", i, "@example.test");
    EXPECT_EQ(testbed_->WaitForDelivered(to, 1, absl::Seconds(30)).size(), 1u) << to;
  }
  const absl::Duration elapsed = absl::Now() - start;
  const int requests = token_requests() - requests_before;
  const double half_lives = absl::FDivDuration(elapsed, absl::Seconds(kTokenLifetimeSeconds / 2));
  std::cout << kMails << " mails over " << elapsed << " with " << kTokenLifetimeSeconds
            << " s tokens: " << requests << " token requests (" << half_lives
            << " half-lives)" << std::endl;
  EXPECT_GE(requests, static_cast<int>(half_lives) - 1);  // the broker does refresh
  EXPECT_LE(requests, static_cast<int>(half_lives) + 2);
}

}  // namespace
}  // namespace mailroom
