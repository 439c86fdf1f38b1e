// Exchange's per-mailbox limits hold for the cluster as a whole: two real sending processes
// (two nodes, psn1 and psn2) share one mailbox whose limits the broker sets to 20 messages a
// minute and 2 connections; together they send at most 20 in the first minute, over at most 2
// connections, and the rest wait in their outboxes with the reason shown.
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/mailroom/broker/v1/broker.grpc.pb.h"
#include "tests/testing/broker_harness.h"
#include "tests/testing/process.h"
#include "tests/testing/test_certs.h"
#include "tests/testing/testbed.h"

namespace mailroom {
namespace {

namespace v1 = ::mailroom::broker::v1;
using ::mailroom::testing::BrokerHarness;
using ::mailroom::testing::ChildProcess;
using ::mailroom::testing::Testbed;
using ::mailroom::testing::TestbedRunfile;

TEST(ClusterLimitsE2eTest, TwoNodesTogetherStayUnderTheMailboxLimits) {
  absl::StatusOr<std::unique_ptr<Testbed>> testbed = Testbed::Start();
  ASSERT_TRUE(testbed.ok()) << testbed.status();
  const std::string tmp = getenv("TEST_TMPDIR");
  const std::string certs = mailroom::testing::MakeTestCerts(
      "certs", "mailroom cluster CA", "broker:broker psn1:psn psn2:psn admin:admin");
  absl::StatusOr<std::unique_ptr<BrokerHarness>> broker = BrokerHarness::Start(
      tmp + "/broker", certs, **testbed, "send_limits { messages_per_minute: 20 max_connections: 2 }");
  ASSERT_TRUE(broker.ok()) << broker.status();
  ASSERT_TRUE((*broker)->Configure(BrokerHarness::TestbedSettings(**testbed)).ok());

  const std::string to = "limits@example.test";
  std::vector<std::unique_ptr<ChildProcess>> senders;
  for (const std::string node : {"psn1", "psn2"}) {
    ASSERT_EQ(system(absl::StrCat("mkdir -p ", tmp, "/", node).c_str()), 0);
    senders.push_back(std::make_unique<ChildProcess>(
        std::vector<std::string>{TestbedRunfile("tests/e2e/tools/mail_sender"),
                                 absl::StrCat("--outbox=", tmp, "/", node, "/outbox.db"),
                                 absl::StrCat("--broker=", (*broker)->target()),
                                 absl::StrCat("--certs=", certs), absl::StrCat("--node=", node),
                                 absl::StrCat("--from=", (*testbed)->Env("MAILBOX")),
                                 absl::StrCat("--to=", to), "--enqueue=25", "--connections=3",
                                 absl::StrCat("--first=", node == "psn1" ? 0 : 100)},
        absl::StrCat(tmp, "/", node, "/sender.log")));
  }
  // Both nodes have 25 messages each. Every permit is granted after `start`, so any 60-second
  // window that the limit covers begins after it: until start + 55 s the MTA may hold at most
  // 20, and on any machine that is not stalled it holds exactly 20 well before then (they take
  // a few seconds). Waiting on the count instead of a short fixed window keeps a slow machine
  // from failing the test, and watching the whole window keeps a 21st message from passing it.
  int max_connections = 0;
  size_t most_delivered = 0;
  absl::Duration time_to_twenty = absl::InfiniteDuration();
  const absl::Time start = absl::Now();
  while (absl::Now() - start < absl::Seconds(55)) {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
    v1::GetQuotaStatusResponse quota;
    if ((*broker)->StubAs("admin")->GetQuotaStatus(&context, {}, &quota).ok() &&
        quota.mailboxes_size() == 1) {
      max_connections = std::max(max_connections, quota.mailboxes(0).open_connections());
      EXPECT_LE(quota.mailboxes(0).messages_last_minute(), 20);
    }
    most_delivered = std::max(most_delivered, (*testbed)->DeliveredTo(to).size());
    if (most_delivered >= 20 && time_to_twenty == absl::InfiniteDuration()) {
      time_to_twenty = absl::Now() - start;
    }
    absl::SleepFor(absl::Milliseconds(250));
  }
  std::cout << "two nodes, 50 messages queued: " << most_delivered
            << " delivered at the MTA in the first 55 s (limit 20/minute), the 20th after "
            << time_to_twenty << ", at most " << max_connections
            << " connection slot(s) held (limit 2)" << std::endl;
  EXPECT_EQ(most_delivered, 20u);
  EXPECT_GE(max_connections, 1);
  EXPECT_LE(max_connections, 2);
  for (auto& sender : senders) sender->Kill();
}

}  // namespace
}  // namespace mailroom
