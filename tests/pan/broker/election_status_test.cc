#include "pan/broker/election_status.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/base/proto_time.h"
#include "gtest/gtest.h"
#include "tests/testing/fake_clock.h"
#include "tests/testing/fake_http_transport.h"

namespace mailroom::broker {
namespace {

namespace gw = ::mailroom::etcd::gw;
using ::mailroom::testing::FakeHttpTransport;

const std::vector<std::string> kEndpoints = {"http://10.0.0.1:2379", "http://10.0.0.2:2379",
                                             "http://10.0.0.3:2379"};

gw::StatusResponse Member(uint64_t id, uint64_t leader) {
  gw::StatusResponse status;
  status.mutable_header()->set_member_id(id);
  status.set_leader(leader);
  status.set_raft_term(4);
  status.set_version("3.4.23");
  return status;
}

TEST(EtcdHealthOfTest, AllMembersUpNameTheLeaderAndItsEndpoint) {
  const status::v1::EtcdHealth health =
      EtcdHealthOf(kEndpoints, {Member(0xa1, 0xb2), Member(0xb2, 0xb2), Member(0xc3, 0xb2)});
  EXPECT_TRUE(health.healthy());
  EXPECT_EQ(health.reachable(), 3);
  EXPECT_EQ(health.leader_id(), "b2");
  EXPECT_EQ(health.leader_endpoint(), "http://10.0.0.2:2379");
  ASSERT_EQ(health.members_size(), 3);
  EXPECT_EQ(health.members(0).member_id(), "a1");
  EXPECT_EQ(health.members(0).leader_id(), "b2");
  EXPECT_EQ(health.members(0).version(), "3.4.23");
  EXPECT_EQ(health.members(0).raft_term(), 4u);
  EXPECT_TRUE(health.members(0).error().empty());
}

TEST(EtcdHealthOfTest, AMemberDownLeavesAQuorumButIsNamedWithItsError) {
  const status::v1::EtcdHealth health = EtcdHealthOf(
      kEndpoints,
      {Member(0xa1, 0xa1), absl::UnavailableError("connection refused"), Member(0xc3, 0xa1)});
  EXPECT_TRUE(health.healthy());
  EXPECT_EQ(health.reachable(), 2);
  EXPECT_EQ(health.leader_endpoint(), "http://10.0.0.1:2379");
  EXPECT_FALSE(health.members(1).reachable());
  EXPECT_EQ(health.members(1).error(), "connection refused");
}

TEST(EtcdHealthOfTest, WithoutQuorumNoLeaderAndNotHealthy) {
  gw::StatusResponse alone = Member(0xc3, 0);
  alone.add_errors("etcdserver: no leader");
  const status::v1::EtcdHealth health =
      EtcdHealthOf(kEndpoints, {absl::UnavailableError("refused"),
                                absl::DeadlineExceededError("timed out"), alone});
  EXPECT_FALSE(health.healthy());
  EXPECT_EQ(health.reachable(), 1);
  EXPECT_EQ(health.leader_id(), "");
  EXPECT_EQ(health.members(2).leader_id(), "");
  EXPECT_EQ(health.members(2).error(), "etcdserver: no leader");
}

TEST(EtcdHealthOfTest, ALeaderKnownByTooFewMembersIsNotHealthy) {
  // The leader is one of the unreachable ones: named, but no endpoint to show.
  const status::v1::EtcdHealth health = EtcdHealthOf(
      kEndpoints,
      {Member(0xa1, 0xb2), absl::UnavailableError("refused"), absl::UnavailableError("refused")});
  EXPECT_FALSE(health.healthy());
  EXPECT_EQ(health.leader_id(), "b2");
  EXPECT_EQ(health.leader_endpoint(), "");
}

TEST(FillElectionStatusTest, ALeaderSaysSinceWhenItsTermAndEtcdAsItSeesIt) {
  FakeClock clock;
  FakeHttpTransport transport;
  etcd::EtcdClientOptions etcd_options;
  etcd_options.endpoints = {"http://127.0.0.1:2379"};
  etcd::EtcdClient etcd(etcd_options, &transport);
  LeaderElectionOptions options;
  options.advertised_address = "pan1:7100";
  options.ttl = absl::Seconds(3);
  LeaderElection election(options, &etcd, &clock);
  transport.EnqueueJson(200, R"({"ID":"5","TTL":"3"})");
  transport.EnqueueJson(200, R"({"header":{"revision":"42"},"succeeded":true})");
  election.Step();
  ASSERT_TRUE(election.leading());
  clock.Advance(absl::Seconds(1));
  transport.EnqueueJson(200, R"({"header":{"member_id":"161"},"leader":"161","raftTerm":"2",)"
                             R"("version":"3.4.23"})");
  const absl::Time now = absl::FromUnixSeconds(1800000000);
  status::v1::BrokerElection out;
  FillElectionStatus(election, &etcd, now, &out);
  EXPECT_TRUE(out.leading());
  EXPECT_EQ(out.advertised_address(), "pan1:7100");
  EXPECT_EQ(out.leader_address(), "pan1:7100");
  EXPECT_EQ(out.term(), 42);
  EXPECT_EQ(FromProto(out.leader_since()), now - absl::Seconds(1));
  EXPECT_EQ(FromProto(out.remaining_term()), absl::Milliseconds(1500));
  EXPECT_EQ(FromProto(out.lease_ttl()), absl::Seconds(3));
  EXPECT_EQ(out.election_key(), "/mailroom/broker/leader");
  EXPECT_TRUE(out.etcd().healthy());
  EXPECT_EQ(out.etcd().leader_id(), "a1");
  EXPECT_EQ(out.etcd().leader_endpoint(), "http://127.0.0.1:2379");
  EXPECT_EQ(transport.requests().back().url, "http://127.0.0.1:2379/v3/maintenance/status");
}

}  // namespace
}  // namespace mailroom::broker
