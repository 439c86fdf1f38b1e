// Exchange's per-mailbox limits as the MTA counts them, through kill -9 of a node: the real
// testbed, the real mailroom-broker (send_limits 20 messages/minute, 2 connections) and two
// real mailroom-psn processes take a paced burst of guest self-registrations through their gRPC
// API; an admin runs Test Connection with a test message in the middle of it; one PSN is killed
// with SIGKILL mid-burst and restarted, and the portal retries what it had not got an answer
// for. Every acknowledged registration arrives, and the MTA itself (tests/testing/mta_meter.h:
// Postfix's policy service at the end of each message, and its connect / disconnect log) never
// sees more than 20 messages in any rolling 60-second window nor more than 2 sessions at once.
#include <map>
#include <memory>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
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

namespace bv1 = ::mailroom::broker::v1;
namespace cv1 = ::mailroom::common::v1;
using ::mailroom::testing::ArrivalsPerTenSeconds;
using ::mailroom::testing::AwaitDelivered;
using ::mailroom::testing::BrokerHarness;
using ::mailroom::testing::GuestBurst;
using ::mailroom::testing::GuestPsnSpec;
using ::mailroom::testing::MostInWindow;
using ::mailroom::testing::MtaMeter;
using ::mailroom::testing::NodeHarness;
using ::mailroom::testing::NodeSpec;
using ::mailroom::testing::Testbed;

constexpr int kPerMinute = 20;
constexpr int kConnections = 2;
// Half through each PSN; with the Test Connection message and the copies a kill -9 may send
// twice, about two minutes of the mailbox's rate.
constexpr int kRequests = 36;
constexpr int kThreadsPerPsn = 2;
// The portal's pace: a registration every 150 ms per thread, so the kill lands mid-burst while
// both nodes are sending.
constexpr absl::Duration kPace = absl::Milliseconds(150);

TEST(MtaLimitsE2eTest, TheMtaNeverSeesMoreThanTheLimitsThroughAKillNine) {
  const absl::Time began = absl::Now();
  absl::StatusOr<std::unique_ptr<Testbed>> testbed = Testbed::Start();
  ASSERT_TRUE(testbed.ok()) << testbed.status();
  absl::StatusOr<std::unique_ptr<MtaMeter>> meter = MtaMeter::Attach(**testbed);
  ASSERT_TRUE(meter.ok()) << meter.status();
  const std::string tmp = getenv("TEST_TMPDIR");
  const std::string certs = mailroom::testing::MakeTestCerts(
      "certs", "mailroom cluster CA", "broker:broker psn1:psn psn2:psn portal:portal admin:admin");
  absl::StatusOr<std::unique_ptr<BrokerHarness>> broker = BrokerHarness::Start(
      tmp + "/broker", certs, **testbed,
      absl::StrCat("send_limits { messages_per_minute: ", kPerMinute,
                   " max_connections: ", kConnections, " }"));
  ASSERT_TRUE(broker.ok()) << broker.status();
  ASSERT_TRUE((*broker)->Configure(BrokerHarness::TestbedSettings(**testbed)).ok());
  const std::string mailbox = (*testbed)->Env("MAILBOX");
  std::map<std::string, std::unique_ptr<NodeHarness>> psns;
  for (const std::string name : {"psn1", "psn2"}) {
    NodeSpec spec = GuestPsnSpec(name, absl::StrCat(tmp, "/", name), certs, mailbox);
    spec.broker_target = (*broker)->target();
    absl::StatusOr<std::unique_ptr<NodeHarness>> node = NodeHarness::Start(spec);
    ASSERT_TRUE(node.ok()) << node.status();
    psns[name] = *std::move(node);
  }

  // The burst: even requests through psn1, odd through psn2.
  const std::string to = "mta-limits@example.test";
  const absl::Time burst_began = absl::Now();
  GuestBurst burst({psns["psn1"].get(), psns["psn2"].get()}, "limits", to, kRequests,
                   kThreadsPerPsn, kPace);
  // Test Connection with a test message once the nodes are sending: it counts against the
  // mailbox like any other connection and message.
  absl::StatusOr<bv1::TestConnectionReport> test_report;
  std::thread admin([&] {
    for (absl::Time deadline = absl::Now() + absl::Seconds(20);
         absl::Now() < deadline && (*meter)->Arrivals(mailbox).size() < 3;) {
      absl::SleepFor(absl::Milliseconds(10));
    }
    test_report = (*broker)->TestConnection(BrokerHarness::TestbedSettings(**testbed),
                                            "mta-limits-test@example.test");
  });
  // kill -9 of psn2 once half of its share is acknowledged.
  for (absl::Time deadline = absl::Now() + absl::Seconds(30);
       burst.acked_by(1) < kRequests / 4 && absl::Now() < deadline;) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  const absl::Duration kill_time = absl::Now() - burst_began;
  const size_t arrived_at_kill = (*meter)->Arrivals(mailbox).size();
  psns["psn2"]->Kill();
  burst.Join();
  const size_t retried = burst.unacked().size();
  ASSERT_GT(retried, 0u) << "the kill came after the burst";
  ASSERT_TRUE(psns["psn2"]->Restart().ok());
  // The portal retries what it had no answer for, with the same idempotency keys.
  ASSERT_TRUE(burst.RetryUnacked(absl::Seconds(20)).ok());
  admin.join();
  const std::map<int, std::string> acked = burst.acked();
  ASSERT_EQ(acked.size(), static_cast<size_t>(kRequests));

  // Until every acknowledged registration has arrived.
  std::map<std::string, int> copies;
  const int lost = AwaitDelivered(**testbed, to, acked, absl::Seconds(150), &copies);
  const std::vector<absl::Time> arrivals = (*meter)->Arrivals(mailbox);
  const int most_in_a_minute = MostInWindow(arrivals, absl::Seconds(60));
  const int most_sessions = (*meter)->MostConcurrentSessions();

  ASSERT_TRUE(test_report.ok()) << test_report.status();
  const std::string per_ten_seconds = ArrivalsPerTenSeconds(arrivals, burst_began);
  std::cout << kRequests << " registrations via psn1 and psn2, psn2 killed with SIGKILL "
            << absl::FormatDuration(kill_time) << " into the burst (" << arrived_at_kill
            << " at the MTA then), " << retried << " retried after its restart; "
            << arrivals.size() << " messages from " << mailbox << " at the MTA ("
            << copies.size() << " distinct guest messages, " << lost << " lost); at the MTA: "
            << "most in any rolling 60 s = " << most_in_a_minute << " (limit " << kPerMinute
            << "), most sessions at once = " << most_sessions << " (limit " << kConnections
            << "); arrivals per 10 s from the burst: " << per_ten_seconds
            << "; Test Connection mid-burst: "
            << (test_report->passed() ? "passed"
                                      : absl::StrCat("failed: ", test_report->diagnosis().title()))
            << "; test ran " << absl::FormatDuration(absl::Now() - began) << std::endl;
  EXPECT_EQ(lost, 0);
  EXPECT_LE(most_in_a_minute, kPerMinute);
  EXPECT_LE(most_sessions, kConnections);
  // Never a server's 432: a busy mailbox is reported by the broker, by name.
  if (!test_report->passed()) {
    EXPECT_THAT(test_report->diagnosis().cause(),
                ::testing::AnyOf(cv1::FAILURE_CAUSE_MAILBOX_CONNECTIONS_IN_USE,
                                 cv1::FAILURE_CAUSE_MAILBOX_SEND_LIMIT_REACHED));
  }
}

}  // namespace
}  // namespace mailroom
