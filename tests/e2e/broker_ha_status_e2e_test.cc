// `mailroomctl status` and `health` with two real mailroom-broker processes elected through a
// real three-member etcd on loopback (issue 12, item 6), run as an admin would with
// broker_targets naming both: they show which broker leads, since when and in which term, and
// etcd's health as each broker reaches it (every member, and etcd's leader); an etcd member
// killed is named as not answering and needs an admin; after kill -9 of the leading broker,
// status names the other as the leader, in a new term, and the old one DOWN.
#include <cstdlib>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/mailroom/status/v1/status.pb.h"
#include "tests/testing/broker_harness.h"
#include "tests/testing/etcd_cluster.h"
#include "tests/testing/mailroomctl.h"
#include "tests/testing/test_certs.h"
#include "third_party/grpc_health/health.grpc.pb.h"

namespace mailroom {
namespace {

namespace sv1 = ::mailroom::status::v1;
using ::grpc::health::v1::HealthCheckResponse;
using ::mailroom::testing::BrokerHarness;
using ::mailroom::testing::CtlResult;
using ::mailroom::testing::EtcdCluster;
using ::mailroom::testing::Mailroomctl;
using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr int kTtlSeconds = 3;

class BrokerHaStatusE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string dir = absl::StrCat(std::getenv("TEST_TMPDIR"), "/ha-status");
    certs_ = mailroom::testing::MakeTestCerts("certs", "mailroom cluster CA",
                                              "broker:broker psn1:psn admin:admin");
    absl::StatusOr<std::unique_ptr<EtcdCluster>> etcd = EtcdCluster::Start(dir + "-etcd");
    ASSERT_TRUE(etcd.ok()) << etcd.status();
    etcd_ = *std::move(etcd);
    a_ = StartBroker(dir + "-a");
    ASSERT_NE(a_, nullptr);
    ASSERT_TRUE(AwaitHealth(*a_, HealthCheckResponse::SERVING)) << "a never led";
    b_ = StartBroker(dir + "-b");
    ASSERT_NE(b_, nullptr);
    ASSERT_TRUE(AwaitHealth(*b_, HealthCheckResponse::NOT_SERVING));
    ctl_ = std::make_unique<Mailroomctl>(
        dir + "-ctl", certs_,
        absl::StrCat("broker_targets: [\"", a_->target(), "\", \"", b_->target(),
                     "\"]\nrpc_timeout { seconds: 10 }"));
  }

  std::unique_ptr<BrokerHarness> StartBroker(const std::string& dir) {
    absl::StatusOr<std::unique_ptr<BrokerHarness>> broker = BrokerHarness::StartWithAuthority(
        dir, certs_, "https://login.microsoftonline.com",
        absl::StrCat("ha { etcd_endpoints: [", etcd_->EndpointsForConfig(),
                     "] lease_ttl { seconds: ", kTtlSeconds,
                     " } advertised_address: \"localhost:$PORT\" }"));
    EXPECT_TRUE(broker.ok()) << broker.status();
    return broker.ok() ? *std::move(broker) : nullptr;
  }

  static bool AwaitHealth(const BrokerHarness& broker, HealthCheckResponse::ServingStatus want) {
    const absl::Time deadline = absl::Now() + absl::Seconds(20);
    while (absl::Now() < deadline) {
      if (broker.Health() == want) return true;
      absl::SleepFor(absl::Milliseconds(50));
    }
    return false;
  }

  sv1::ClusterStatus JsonStatus() {
    sv1::ClusterStatus status;
    const absl::Status parsed =
        mailroom::testing::ParseJsonOutput(ctl_->Run({"--json", "status"}).output, &status);
    EXPECT_TRUE(parsed.ok()) << parsed;
    return status;
  }

  // The election as broker `index` (0: a, 1: b) told it.
  static const sv1::BrokerElection& ElectionOf(const sv1::ClusterStatus& status, int index) {
    return status.nodes(index).status().broker().election();
  }

  std::string certs_;
  std::unique_ptr<EtcdCluster> etcd_;
  std::unique_ptr<BrokerHarness> a_;
  std::unique_ptr<BrokerHarness> b_;
  std::unique_ptr<Mailroomctl> ctl_;
};

TEST_F(BrokerHaStatusE2eTest, StatusAndHealthNameTheLeaderAndEtcdsHealthThroughAFailover) {
  const std::string a = a_->target();
  const std::string b = b_->target();

  // Both brokers up: broker1 (a) leads, broker2 (b) stands by and names it.
  sv1::ClusterStatus status = JsonStatus();
  ASSERT_EQ(status.nodes_size(), 2);
  EXPECT_EQ(status.nodes(0).health(), sv1::NODE_HEALTH_SERVING);
  EXPECT_EQ(status.nodes(1).health(), sv1::NODE_HEALTH_STANDBY);
  const sv1::BrokerElection& leader = ElectionOf(status, 0);
  EXPECT_TRUE(leader.leading());
  EXPECT_EQ(leader.leader_address(), a);
  EXPECT_GT(leader.term(), 0);
  EXPECT_TRUE(leader.has_leader_since());
  const int64_t first_term = leader.term();
  const sv1::BrokerElection& standby = ElectionOf(status, 1);
  EXPECT_FALSE(standby.leading());
  EXPECT_EQ(standby.leader_address(), a);
  EXPECT_EQ(standby.term(), first_term);
  for (int i : {0, 1}) {
    const sv1::EtcdHealth& etcd = ElectionOf(status, i).etcd();
    EXPECT_TRUE(etcd.healthy()) << etcd.DebugString();
    EXPECT_EQ(etcd.reachable(), 3);
    EXPECT_FALSE(etcd.leader_endpoint().empty());
  }
  // Nothing about the election needs an admin (only the settings, never saved here).
  for (const std::string& line : status.attention()) {
    EXPECT_THAT(line, Not(HasSubstr("etcd")));
    EXPECT_THAT(line, Not(HasSubstr("leads")));
  }

  CtlResult screen = ctl_->Run({"status"});
  EXPECT_THAT(screen.output, HasSubstr(absl::StrCat("  broker1  LEADER  ", a, "  leads since ")));
  EXPECT_THAT(screen.output, HasSubstr(absl::StrCat("), term ", first_term, "\n")));
  EXPECT_THAT(screen.output, HasSubstr(absl::StrCat("  broker2  STANDBY ", b,
                                                    "  stands by; the leader is ", a, " (term ",
                                                    first_term, ")\n")));
  EXPECT_THAT(screen.output, HasSubstr("etcd as broker1 sees it: healthy, 3/3 members answer, "
                                       "leader http://127.0.0.1:"));
  EXPECT_THAT(screen.output, HasSubstr("etcd as broker2 sees it: healthy, 3/3 members answer"));
  CtlResult health = ctl_->Run({"health"});
  EXPECT_EQ(health.exit_code, 0) << health.output;
  EXPECT_THAT(health.output, HasSubstr(absl::StrCat("broker1 ", a, ": SERVING, leads since ")));
  EXPECT_THAT(health.output, HasSubstr(absl::StrCat("broker2 ", b, ": STANDBY, stands by; the "
                                                    "leader is ", a)));
  EXPECT_THAT(health.output, HasSubstr(", leader, raft term "));

  // An etcd member down: named by both brokers, and it needs an admin.
  const std::string member = etcd_->endpoints()[2];
  etcd_->Kill(2);
  status = JsonStatus();
  EXPECT_EQ(ElectionOf(status, 0).etcd().reachable(), 2);
  EXPECT_TRUE(ElectionOf(status, 0).etcd().healthy());
  EXPECT_FALSE(ElectionOf(status, 0).etcd().members(2).reachable());
  EXPECT_TRUE(ElectionOf(status, 0).leading());  // two of three keep the quorum
  EXPECT_THAT(status.attention(),
              Contains(HasSubstr(absl::StrCat("etcd member ", member, " does not answer broker1"))));
  health = ctl_->Run({"health"});
  EXPECT_EQ(health.exit_code, 1) << health.output;
  EXPECT_THAT(health.output, HasSubstr(absl::StrCat("  ", member, "  DOES NOT ANSWER: ")));
  // A probe's --live asks for no election: both brokers answer, so it passes.
  const CtlResult live = ctl_->Run({"--live", "health"});
  EXPECT_EQ(live.exit_code, 0) << live.output;
  EXPECT_THAT(live.output, HasSubstr(absl::StrCat("broker2 ", b, ": STANDBY\n")));
  EXPECT_THAT(live.output, Not(HasSubstr("etcd")));
  ASSERT_TRUE(etcd_->Restart(2).ok());
  ASSERT_TRUE(etcd_->AwaitHealthy().ok());

  // kill -9 of the leader: status names the other broker as the leader, in a new term.
  const absl::Time killed = absl::Now();
  a_->process().Kill();
  ASSERT_TRUE(AwaitHealth(*b_, HealthCheckResponse::SERVING)) << "b never led";
  const absl::Duration handover = absl::Now() - killed;
  status = JsonStatus();
  std::cout << "kill -9 of the leading broker: b SERVING after " << handover
            << ", status read after " << absl::Now() - killed << std::endl;
  EXPECT_EQ(status.nodes(0).health(), sv1::NODE_HEALTH_DOWN);
  EXPECT_EQ(status.nodes(1).health(), sv1::NODE_HEALTH_SERVING);
  const sv1::BrokerElection& next = ElectionOf(status, 1);
  EXPECT_TRUE(next.leading());
  EXPECT_EQ(next.leader_address(), b);
  EXPECT_GT(next.term(), first_term);
  EXPECT_TRUE(next.etcd().healthy());
  screen = ctl_->Run({"status"});
  EXPECT_EQ(screen.exit_code, 1);  // broker1 is DOWN
  EXPECT_THAT(screen.output, HasSubstr(absl::StrCat("  broker2  LEADER  ", b, "  leads since ")));
  EXPECT_THAT(screen.output, HasSubstr(absl::StrCat("), term ", next.term(), "\n")));
  EXPECT_THAT(screen.output, HasSubstr(absl::StrCat("broker1 (", a, ") is DOWN")));
  health = ctl_->Run({"health"});
  EXPECT_THAT(health.output, HasSubstr(absl::StrCat("broker2 ", b, ": SERVING, leads since ")));
  EXPECT_THAT(health.output, HasSubstr("etcd as broker2 sees it: healthy, 3/3 members answer"));
}

}  // namespace
}  // namespace mailroom
