// Figures for issue 13's benchmark, run by bench/mailbox_pool.sh (tagged manual: not in the
// suite, it takes long): k mailboxes give k times one mailbox's rate with no violation, for
// k = 1, 2, 4, counted at the MTA (MtaMeter, per SASL login). Everything real: the testbed,
// a mailroom-broker, a mailroom-psn and a mailroom-mnt over gRPC.
//
// How load spreads: a route lists mailboxes "most preferred first" and the delivery worker
// moves a batch to the route's next mailbox only when one is paused after a 5.2.0, never
// because one is at its per-minute limit (common/node/delivery_worker.cc, Round). So k
// mailboxes carry k purposes, each routed to a mailbox of its own:
//   GUEST_CREDENTIALS -> guests@   (sponsor-created guests, psn1)
//   ALARMS            -> alerts@   (distinct alarms, mnt1)                  from k = 2
//   SPONSOR_MAIL      -> pool1@    (sponsor summaries, psn1)                from k = 4
//   TEST_MAIL         -> pool2@    (portal test email, psn1)                from k = 4
// Each mailbox is limited to BENCH_PER_MINUTE (60) messages a minute (Exchange's 30, scaled);
// each purpose gets a backlog larger than its mailbox can send in the run, queued at once,
// and the run measures BENCH_SECONDS (120) from the first arrival at the MTA. A mailbox's rate
// is its arrivals in that time per minute; a violation is any rolling 60 s over its limit.
// The test prints one line per k ("k=<k> ...", which the script reads) and fails on a mailbox
// that sent nothing or a violation, so that a bad run is not mistaken for a figure.
#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"
#include "proto/mailroom/mnt/v1/mnt.grpc.pb.h"
#include "proto/mailroom/psn/v1/psn.grpc.pb.h"
#include "tests/testing/broker_harness.h"
#include "tests/testing/guest_burst.h"
#include "tests/testing/mta_meter.h"
#include "tests/testing/node_harness.h"
#include "tests/testing/rolling_window.h"
#include "tests/testing/test_certs.h"
#include "tests/testing/testbed.h"

namespace mailroom {
namespace {

namespace mv1 = ::mailroom::mnt::v1;
namespace pv1 = ::mailroom::psn::v1;
using ::mailroom::testing::BrokerHarness;
using ::mailroom::testing::GuestPsnSpec;
using ::mailroom::testing::MntSpec;
using ::mailroom::testing::MostInWindow;
using ::mailroom::testing::MtaMeter;
using ::mailroom::testing::NodeHarness;
using ::mailroom::testing::NodeSpec;
using ::mailroom::testing::SponsorCreatedAccounts;
using ::mailroom::testing::Testbed;

int EnvInt(const char* name, int fallback) {
  int value = 0;
  const char* text = std::getenv(name);
  return text != nullptr && absl::SimpleAtoi(text, &value) && value > 0 ? value : fallback;
}

std::unique_ptr<grpc::ClientContext> Context() {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
  return context;
}

struct Lane {
  const char* purpose;  // MAIL_PURPOSE_<purpose>
  const char* mailbox;
};
constexpr Lane kLanes[] = {
    {"GUEST_CREDENTIALS", "guests@example.test"},
    {"ALARMS", "alerts@example.test"},
    {"SPONSOR_MAIL", "pool1@example.test"},
    {"TEST_MAIL", "pool2@example.test"},
};

// One run with the first `k` lanes; prints its line; returns messages a minute per mailbox.
void RunWithMailboxes(int k) {
  const int per_minute = EnvInt("BENCH_PER_MINUTE", 60);
  const absl::Duration measured = absl::Seconds(EnvInt("BENCH_SECONDS", 120));
  // Half a minute more than the run can send, so that every mailbox is at its limit throughout.
  const int backlog = static_cast<int>(per_minute * (measured / absl::Minutes(1))) + per_minute / 2;

  absl::StatusOr<std::unique_ptr<Testbed>> testbed = Testbed::Start();
  ASSERT_TRUE(testbed.ok()) << testbed.status();
  absl::StatusOr<std::unique_ptr<MtaMeter>> meter = MtaMeter::Attach(**testbed);
  ASSERT_TRUE(meter.ok()) << meter.status();
  const std::string tmp = absl::StrCat(std::getenv("TEST_TMPDIR"), "/k", k);
  const std::string certs = mailroom::testing::MakeTestCerts(
      absl::StrCat("certs-k", k), "mailroom cluster CA",
      "broker:broker psn1:psn mnt1:mnt portal:portal admin:admin");
  absl::StatusOr<std::unique_ptr<BrokerHarness>> broker = BrokerHarness::Start(
      tmp + "/broker", certs, **testbed,
      absl::StrCat("send_limits { messages_per_minute: ", per_minute, " }"));
  ASSERT_TRUE(broker.ok()) << broker.status();
  broker::v1::SmtpSettings settings = BrokerHarness::TestbedSettings(**testbed);
  std::string pool;
  for (int i = 0; i < k; ++i) {
    absl::StrAppend(&pool, "mailboxes { address: \"", kLanes[i].mailbox,
                    "\" limits { messages_per_minute: ", per_minute, " } }\n",
                    "routes { purpose: MAIL_PURPOSE_", kLanes[i].purpose, " mailboxes: \"",
                    kLanes[i].mailbox, "\" }\n");
  }
  ASSERT_TRUE(google::protobuf::TextFormat::MergeFromString(pool, &settings));
  const absl::Status configured = (*broker)->Configure(settings);
  ASSERT_TRUE(configured.ok()) << configured;

  NodeSpec psn_spec = GuestPsnSpec("psn1", tmp + "/psn1", certs, kLanes[0].mailbox);
  psn_spec.broker_target = (*broker)->target();
  psn_spec.logging = "logging { default_level: LOG_LEVEL_WARN }";
  absl::StatusOr<std::unique_ptr<NodeHarness>> psn = NodeHarness::Start(psn_spec);
  ASSERT_TRUE(psn.ok()) << psn.status();
  std::unique_ptr<NodeHarness> mnt;
  if (k >= 2) {
    NodeSpec spec = MntSpec(
        tmp + "/mnt1", certs,
        absl::StrCat("alarm_settings { include_system_alarms_in_emails: true sender { address: \"",
                     kLanes[1].mailbox,
                     "\" } admin_recipients { address: \"bench-noc@example.test\" } }"),
        "LOG_LEVEL_WARN");
    spec.broker_target = (*broker)->target();
    absl::StatusOr<std::unique_ptr<NodeHarness>> started = NodeHarness::Start(spec);
    ASSERT_TRUE(started.ok()) << started.status();
    mnt = *std::move(started);
  }

  // The backlogs, all queued before the first arrival is awaited.
  const absl::Time queuing = absl::Now();
  auto portal = pv1::GuestNotifications::NewStub((*psn)->ChannelAs("portal"));
  {
    pv1::NotifySponsorCreatedAccountsResponse response;
    const grpc::Status status = portal->NotifySponsorCreatedAccounts(
        Context().get(), SponsorCreatedAccounts("bench", backlog, "bench-guest@example.test"),
        &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
  }
  for (int i = 0; i < backlog && k >= 2; ++i) {
    mv1::RaiseAlarmRequest request;
    request.set_type(mv1::ALARM_TYPE_GENERIC);
    request.set_source_node("psn1");
    request.set_dedup_key(absl::StrCat("bench-", i));
    request.set_idempotency_key(absl::StrCat("bench-", i));
    request.set_text(absl::StrCat("Benchmark alarm ", i));
    mv1::RaiseAlarmResponse response;
    const grpc::Status status = mv1::Alarms::NewStub(mnt->ChannelAs("psn1"))
                                    ->RaiseAlarm(Context().get(), request, &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
  }
  for (int i = 0; i < backlog && k >= 4; ++i) {
    // A sponsor's one guest with the sponsor's summary (SPONSOR_MAIL; its guest's credentials
    // join the GUEST_CREDENTIALS backlog), and a portal test email (TEST_MAIL).
    pv1::NotifySponsorCreatedAccountsRequest created =
        SponsorCreatedAccounts(absl::StrCat("bench-summary-", i), 1, "bench-guest@example.test");
    created.set_send_summary(true);
    pv1::NotifySponsorCreatedAccountsResponse created_response;
    grpc::Status status =
        portal->NotifySponsorCreatedAccounts(Context().get(), created, &created_response);
    ASSERT_TRUE(status.ok()) << status.error_message();
    pv1::SendTestEmailRequest test;
    test.set_portal_id("lobby");
    test.mutable_to()->set_address("bench-test@example.test");
    test.set_idempotency_key(absl::StrCat("bench-test-", i));
    pv1::SendTestEmailResponse test_response;
    status = portal->SendTestEmail(Context().get(), test, &test_response);
    ASSERT_TRUE(status.ok()) << status.error_message();
  }
  const absl::Time queued = absl::Now();

  // The run: `measured` from the first arrival of any mailbox.
  absl::Time first = absl::InfiniteFuture();
  for (const absl::Time deadline = absl::Now() + absl::Seconds(60);
       first == absl::InfiniteFuture() && absl::Now() < deadline;) {
    for (int i = 0; i < k; ++i) {
      const std::vector<absl::Time> arrivals = (*meter)->Arrivals(kLanes[i].mailbox);
      if (!arrivals.empty()) first = std::min(first, arrivals.front());
    }
    absl::SleepFor(absl::Milliseconds(100));
  }
  ASSERT_NE(first, absl::InfiniteFuture()) << "nothing arrived at the MTA";
  absl::SleepFor(first + measured - absl::Now() + absl::Seconds(1));

  std::vector<std::string> per_mailbox;
  double total_per_minute = 0;
  int violations = 0;
  for (int i = 0; i < k; ++i) {
    std::vector<absl::Time> arrivals = (*meter)->Arrivals(kLanes[i].mailbox);
    const int in_run = static_cast<int>(std::count_if(
        arrivals.begin(), arrivals.end(), [&](absl::Time t) { return t < first + measured; }));
    EXPECT_GT(in_run, 0) << kLanes[i].mailbox << " sent nothing in the run";
    const double rate = in_run / (measured / absl::Minutes(1));
    const int most = MostInWindow(arrivals, absl::Seconds(60));
    violations += most > per_minute;
    total_per_minute += rate;
    per_mailbox.push_back(absl::StrCat(kLanes[i].mailbox, "=", rate, "/min(max60s=", most, ")"));
  }
  std::cout << "k=" << k << " total_per_minute=" << total_per_minute
            << " violations=" << violations << " limit=" << per_minute << " backlog="
            << backlog << " queued_in=" << absl::FormatDuration(queued - queuing)
            << " measured=" << absl::FormatDuration(measured) << " " << absl::StrJoin(per_mailbox, " ")
            << std::endl;
  EXPECT_EQ(violations, 0);
}

TEST(MailboxPoolBench, KMailboxesGiveKTimesOneMailboxsRate) {
  for (int k : {1, 2, 4}) {
    RunWithMailboxes(k);
    if (::testing::Test::HasFatalFailure()) return;
  }
}

}  // namespace
}  // namespace mailroom
