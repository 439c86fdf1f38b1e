// Cluster status end to end, every piece its own real process over mutual TLS: the testbed
// (oidc-provider as Entra ID, Postfix + Dovecot checking XOAUTH2), the broker, the PAN, two
// PSNs and the MnT, and the real mailroomctl. A healthy cluster's `mailroomctl status` exits 0
// and shows every node SERVING with its version and outbox counts (and --json the same as a
// ClusterStatus); with Postfix stopped, a PSN whose backlog thresholds are low (3 queued, 5 s)
// raises QUEUE_BACKLOG, listed by the MnT, and status exits 1 showing it; Postfix back, the
// queue drains, the alarm is cleared and its email arrives; a killed PSN is shown DOWN with
// the rest of the cluster still shown.
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/mailroom/mnt/v1/mnt.grpc.pb.h"
#include "proto/mailroom/psn/v1/psn.grpc.pb.h"
#include "proto/mailroom/status/v1/status.pb.h"
#include "tests/testing/broker_harness.h"
#include "tests/testing/mailroomctl.h"
#include "tests/testing/node_harness.h"
#include "tests/testing/process.h"
#include "tests/testing/test_certs.h"
#include "tests/testing/testbed.h"

namespace mailroom {
namespace {

namespace cv1 = ::mailroom::common::v1;
namespace mv1 = ::mailroom::mnt::v1;
namespace pv1 = ::mailroom::psn::v1;
namespace sv1 = ::mailroom::status::v1;
using ::mailroom::testing::BrokerHarness;
using ::mailroom::testing::CtlResult;
using ::mailroom::testing::Mailroomctl;
using ::mailroom::testing::NodeHarness;
using ::mailroom::testing::NodeSpec;
using ::mailroom::testing::ReadAll;
using ::mailroom::testing::Testbed;
using ::mailroom::testing::WaitFor;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::SizeIs;

constexpr char kNoc[] = "status-noc@example.test";
// Thresholds low enough to cross with a handful of messages while Postfix is away. One SMTP
// connection each, so that a PSN retrying against the stopped Postfix does not hold all three
// of the mailbox's cluster-wide connection slots, and the MnT gets one for the alarm email as
// soon as Postfix is back (otherwise it waits out the slot's lease, about a minute).
constexpr char kPsnDelivery[] =
    "delivery { backoff_initial { seconds: 1 } backoff_max { seconds: 2 } smtp_connections: 1"
    " backlog_alarm_queued: 3 backlog_alarm_age { seconds: 5 } }\n";

std::unique_ptr<grpc::ClientContext> Context() {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(20)));
  return context;
}

// The `--json` output of status as a message.
sv1::ClusterStatus ParseStatus(const std::string& output) {
  sv1::ClusterStatus status;
  const absl::Status parsed = mailroom::testing::ParseJsonOutput(output, &status);
  EXPECT_TRUE(parsed.ok()) << parsed;
  return status;
}

// The status screen's line of a node: name, health and version in their columns.
std::string NodeLine(const std::string& name, const std::string& health,
                     const std::string& version) {
  return absl::StrFormat("%-8s %-11s %-8s ", name, health, version);
}

class StatusE2eTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    absl::StatusOr<std::unique_ptr<Testbed>> testbed = Testbed::Start();
    ASSERT_TRUE(testbed.ok()) << testbed.status();
    testbed_ = testbed->release();
    certs_ = new std::string(mailroom::testing::MakeTestCerts(
        "certs", "mailroom cluster CA",
        "broker:broker pan1:pan psn1:psn psn2:psn mnt1:mnt portal:portal admin:admin"));
    absl::StatusOr<std::unique_ptr<BrokerHarness>> broker = BrokerHarness::Start(
        absl::StrCat(getenv("TEST_TMPDIR"), "/broker"), *certs_, *testbed_,
        "send_limits { messages_per_minute: 100000 recipients_per_day: 100000 }");
    ASSERT_TRUE(broker.ok()) << broker.status();
    broker_ = broker->release();
    const absl::Status configured = broker_->Configure(BrokerHarness::TestbedSettings(*testbed_));
    ASSERT_TRUE(configured.ok()) << configured;

    const std::string mailbox = testbed_->Env("MAILBOX");
    ASSERT_NO_FATAL_FAILURE(Start(
        "mnt/mailroom-mnt", "ROLE_MNT", "mnt1", "",
        absl::StrCat("delivery { backoff_initial { seconds: 1 } backoff_max { seconds: 2 } }\n"
                     "mnt { alarm_settings { include_system_alarms_in_emails: true"
                     " sender { address: \"",
                     mailbox, "\" } admin_recipients { address: \"", kNoc, "\" } } }\n"),
        &mnt_));
    ASSERT_NO_FATAL_FAILURE(Start("pan/mailroom-pan", "ROLE_PAN", "pan1", mnt_->target(),
                                  "delivery { backoff_initial { seconds: 1 } }\n", &pan_));
    const std::string psn = absl::StrCat(
        kPsnDelivery, "psn { guest_email_settings { notifications_enabled: true",
        " default_from { address: \"", mailbox, "\" } } }\n");
    ASSERT_NO_FATAL_FAILURE(
        Start("psn/mailroom-psn", "ROLE_PSN", "psn1", mnt_->target(), psn, &psn1_));
    ASSERT_NO_FATAL_FAILURE(
        Start("psn/mailroom-psn", "ROLE_PSN", "psn2", mnt_->target(), psn, &psn2_));

    ctl_ = new Mailroomctl(
        absl::StrCat(getenv("TEST_TMPDIR"), "/ctl"), *certs_,
        absl::StrCat("broker_target: \"", broker_->target(), "\"\npan_target: \"",
                     pan_->target(), "\"\npsn_targets: \"", psn1_->target(),
                     "\"\npsn_targets: \"", psn2_->target(), "\"\nmnt_target: \"",
                     mnt_->target(), "\"\nrpc_timeout { seconds: 10 }"));
  }

  static void TearDownTestSuite() {
    delete ctl_;
    for (NodeHarness* node : {psn2_, psn1_, pan_, mnt_}) delete node;
    delete broker_;
    delete testbed_;
  }

  void TearDown() override {
    if (!HasFailure()) return;
    for (NodeHarness* node : {psn1_, mnt_}) {
      std::cerr << "---- " << node->log_path() << "\n" << ReadAll(node->log_path());
    }
  }

  static void Start(const std::string& binary, const std::string& role, const std::string& name,
                    const std::string& mnt_target, const std::string& extra,
                    NodeHarness** out) {
    NodeSpec spec;
    spec.binary = binary;
    spec.role = role;
    spec.node_name = name;
    spec.dir = absl::StrCat(getenv("TEST_TMPDIR"), "/", name);
    spec.certs = *certs_;
    spec.broker_target = broker_->target();
    spec.mnt_target = mnt_target;
    spec.extra_config = extra;
    absl::StatusOr<std::unique_ptr<NodeHarness>> node = NodeHarness::Start(spec);
    ASSERT_TRUE(node.ok()) << node.status();
    *out = node->release();
  }

  // Queues a portal test email to `to` on psn1, as a portal would.
  static void SendTestEmail(const std::string& to, const std::string& key) {
    pv1::SendTestEmailRequest request;
    request.set_portal_id("lobby");
    request.mutable_to()->set_address(to);
    request.set_idempotency_key(key);
    pv1::SendTestEmailResponse response;
    const grpc::Status status = pv1::GuestNotifications::NewStub(psn1_->ChannelAs("portal"))
                                    ->SendTestEmail(Context().get(), request, &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
  }

  // psn1's QUEUE_BACKLOG alarms in `state`, as the MnT lists them.
  static std::vector<mv1::Alarm> BacklogAlarms(mv1::AlarmState state) {
    mv1::ListAlarmsRequest request;
    request.add_types(mv1::ALARM_TYPE_QUEUE_BACKLOG);
    request.add_states(state);
    request.set_source_node("psn1");
    mv1::ListAlarmsResponse response;
    const grpc::Status status = mv1::Alarms::NewStub(mnt_->ChannelAs("admin"))
                                    ->ListAlarms(Context().get(), request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return {response.alarms().begin(), response.alarms().end()};
  }

  static Testbed* testbed_;
  static std::string* certs_;
  static BrokerHarness* broker_;
  static NodeHarness* mnt_;
  static NodeHarness* pan_;
  static NodeHarness* psn1_;
  static NodeHarness* psn2_;
  static Mailroomctl* ctl_;
};

Testbed* StatusE2eTest::testbed_ = nullptr;
std::string* StatusE2eTest::certs_ = nullptr;
BrokerHarness* StatusE2eTest::broker_ = nullptr;
NodeHarness* StatusE2eTest::mnt_ = nullptr;
NodeHarness* StatusE2eTest::pan_ = nullptr;
NodeHarness* StatusE2eTest::psn1_ = nullptr;
NodeHarness* StatusE2eTest::psn2_ = nullptr;
Mailroomctl* StatusE2eTest::ctl_ = nullptr;

// The tests run in this order on one cluster: healthy, then Postfix stopped and restarted,
// then a PSN killed.

TEST_F(StatusE2eTest, AHealthyClusterExitsZeroWithEveryNodeServing) {
  const std::string recipient = "status-healthy@example.test";
  ASSERT_NO_FATAL_FAILURE(SendTestEmail(recipient, "healthy-1"));
  ASSERT_NO_FATAL_FAILURE(SendTestEmail(recipient, "healthy-2"));
  ASSERT_THAT(testbed_->WaitForDelivered(recipient, 2, absl::Seconds(60)), SizeIs(2));
  // The outbox records SENT just after the server's 250.
  ASSERT_TRUE(WaitFor(
      [] {
        const sv1::ClusterStatus status = ParseStatus(ctl_->Run({"--json", "status"}).output);
        return status.nodes_size() == 5 &&
               status.nodes(2).status().delivery().outbox().sent() == 2;
      },
      absl::Seconds(20)));

  const CtlResult screen = ctl_->Run({"status"});
  EXPECT_EQ(screen.exit_code, 0) << screen.output;
  for (const char* name : {"broker", "pan", "psn1", "psn2", "mnt"}) {
    EXPECT_THAT(screen.output, HasSubstr(NodeLine(name, "SERVING", "0.1.0"))) << name;
  }
  EXPECT_THAT(screen.output, HasSubstr(absl::StrFormat("%-8s %6d %7d %7d %6d", "psn1", 0, 0, 2, 0)));
  EXPECT_THAT(screen.output, HasSubstr(absl::StrFormat("%-8s %6d %7d %7d %6d", "psn2", 0, 0, 0, 0)));
  EXPECT_THAT(screen.output, HasSubstr("token HEALTHY"));
  EXPECT_THAT(screen.output, HasSubstr("Active alarms: none"));
  EXPECT_THAT(screen.output, HasSubstr("Nothing needs an admin."));

  const CtlResult json = ctl_->Run({"--json", "status"});
  EXPECT_EQ(json.exit_code, 0);
  const sv1::ClusterStatus status = ParseStatus(json.output);
  ASSERT_EQ(status.nodes_size(), 5);
  for (const sv1::NodeReport& node : status.nodes()) {
    EXPECT_EQ(node.health(), sv1::NODE_HEALTH_SERVING) << node.name();
    EXPECT_EQ(node.status().version(), "0.1.0") << node.name();
  }
  EXPECT_EQ(status.nodes(0).status().role(), cv1::ROLE_BROKER);
  EXPECT_EQ(status.nodes(0).status().broker().token_health(), sv1::TOKEN_HEALTH_STATE_HEALTHY);
  EXPECT_EQ(status.nodes(0).status().broker().mailboxes(0).mailbox(), testbed_->Env("MAILBOX"));
  const sv1::DeliveryStatus& psn1 = status.nodes(2).status().delivery();
  EXPECT_EQ(status.nodes(2).status().node(), "psn1");
  EXPECT_EQ(psn1.latency().count(), 2);
  EXPECT_TRUE(psn1.latency().has_p50());
  EXPECT_TRUE(psn1.latency().has_p99());
  EXPECT_EQ(psn1.backlog_alarm_queued(), 3);
  EXPECT_TRUE(status.nodes(2).status().token().usable());
  EXPECT_TRUE(status.attention().empty());
  // Nothing secret in the status, in any form.
  EXPECT_THAT(json.output, Not(HasSubstr(testbed_->Env("CLIENT_SECRET"))));

  const CtlResult health = ctl_->Run({"health"});
  EXPECT_EQ(health.exit_code, 0) << health.output;
  EXPECT_THAT(health.output, HasSubstr("psn2 " + psn2_->target() + ": SERVING"));
}

TEST_F(StatusE2eTest, AStoppedMtaRaisesQueueBacklogAndItsReturnClearsIt) {
  const std::string recipient = "status-backlog@example.test";
  ASSERT_EQ(testbed_->RunScript({"svc-stop", testbed_->dir(), "postfix"}), 0);
  bool postfix_stopped = true;
  // Postfix comes back even when an assertion ends the test early: the next test needs it.
  absl::Cleanup restart = [&postfix_stopped] {
    if (postfix_stopped) testbed_->RunScript({"svc-start", testbed_->dir(), "postfix"});
  };
  for (int i = 0; i < 5; ++i) {
    ASSERT_NO_FATAL_FAILURE(SendTestEmail(recipient, absl::StrCat("backlog-", i)));
  }
  const absl::Time sent = absl::Now();
  ASSERT_TRUE(WaitFor([] { return !BacklogAlarms(mv1::ALARM_STATE_ACTIVE).empty(); },
                      absl::Seconds(30)))
      << "no QUEUE_BACKLOG from psn1";
  std::cout << "QUEUE_BACKLOG listed " << absl::Now() - sent << " after the 5th message\n";
  const mv1::Alarm alarm = BacklogAlarms(mv1::ALARM_STATE_ACTIVE)[0];
  EXPECT_EQ(alarm.severity(), mv1::ALARM_SEVERITY_WARNING);
  EXPECT_EQ(alarm.dedup_key(), "queue-backlog");
  EXPECT_THAT(alarm.text(), HasSubstr("The outbox of psn1 holds "));
  EXPECT_THAT(alarm.text(), HasSubstr("not yet delivered (alarm above 3)"));
  EXPECT_EQ(alarm.occurrence_count(), 1);

  const CtlResult down = ctl_->Run({"status"});
  EXPECT_EQ(down.exit_code, 1) << down.output;
  EXPECT_THAT(down.output, HasSubstr("WARNING  QUEUE_BACKLOG        psn1"));
  EXPECT_THAT(down.output, HasSubstr("psn1: BACKLOG over its threshold"));
  EXPECT_THAT(down.output, HasSubstr("WARNING alarm QUEUE_BACKLOG on psn1"));
  EXPECT_THAT(down.output, HasSubstr("over the backlog threshold"));
  EXPECT_THAT(down.output, HasSubstr("psn1: last delivery error"));
  // Still one occurrence: raised once per episode, not at every check.
  EXPECT_EQ(BacklogAlarms(mv1::ALARM_STATE_ACTIVE)[0].occurrence_count(), 1);

  ASSERT_EQ(testbed_->RunScript({"svc-start", testbed_->dir(), "postfix"}), 0);
  postfix_stopped = false;
  const absl::Time back = absl::Now();
  EXPECT_THAT(testbed_->WaitForDelivered(recipient, 5, absl::Seconds(60)), SizeIs(5));
  ASSERT_TRUE(WaitFor([] { return BacklogAlarms(mv1::ALARM_STATE_ACTIVE).empty(); },
                      absl::Seconds(30)))
      << "QUEUE_BACKLOG not cleared after the drain";
  std::cout << "QUEUE_BACKLOG cleared " << absl::Now() - back << " after Postfix returned\n";
  const std::vector<mv1::Alarm> cleared = BacklogAlarms(mv1::ALARM_STATE_CLEARED);
  ASSERT_THAT(cleared, SizeIs(1));
  EXPECT_THAT(cleared[0].clear_reason(), HasSubstr("back under its thresholds"));
  // The MnT emailed the alarm once Postfix was back.
  const std::vector<std::string> mailed = testbed_->WaitForDelivered(kNoc, 1, absl::Seconds(60));
  ASSERT_THAT(mailed, Not(::testing::IsEmpty()));
  EXPECT_THAT(mailed[0], HasSubstr("alarm on psn1"));

  const CtlResult up = ctl_->Run({"status"});
  EXPECT_EQ(up.exit_code, 0) << up.output;
  EXPECT_THAT(up.output, HasSubstr("Nothing needs an admin."));
}

TEST_F(StatusE2eTest, AKilledPsnIsShownDownAndTheRestStillShown) {
  psn2_->Kill();
  const absl::Time start = absl::Now();
  const CtlResult screen = ctl_->Run({"status"});
  std::cout << "status with a node down took " << absl::Now() - start << "\n";
  EXPECT_EQ(screen.exit_code, 1) << screen.output;
  EXPECT_THAT(screen.output, HasSubstr(absl::StrFormat("%-8s %-11s %-8s ", "psn2", "DOWN", "-")));
  for (const char* name : {"broker", "pan", "psn1", "mnt"}) {
    EXPECT_THAT(screen.output, HasSubstr(NodeLine(name, "SERVING", "0.1.0"))) << name;
  }
  EXPECT_THAT(screen.output, HasSubstr(absl::StrCat("psn2 (", psn2_->target(), ") is DOWN")));
  EXPECT_THAT(screen.output, HasSubstr("OUTBOX"));

  const sv1::ClusterStatus status = ParseStatus(ctl_->Run({"--json", "status"}).output);
  ASSERT_EQ(status.nodes_size(), 5);
  EXPECT_EQ(status.nodes(3).name(), "psn2");
  EXPECT_EQ(status.nodes(3).health(), sv1::NODE_HEALTH_DOWN);
  EXPECT_FALSE(status.nodes(3).error().empty());
  EXPECT_TRUE(status.nodes(2).has_status());
  EXPECT_THAT(status.attention(), SizeIs(1));
}

}  // namespace
}  // namespace mailroom
