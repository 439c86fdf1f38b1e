// EtcdClient against a real three-member etcd cluster on loopback (Debian's etcd 3.4).
#include <cstdlib>
#include <memory>
#include <string>

#include "absl/time/clock.h"
#include "common/etcd/etcd_client.h"
#include "common/rpc/http_transport.h"
#include "gtest/gtest.h"
#include "tests/testing/etcd_cluster.h"

namespace mailroom::etcd {
namespace {

using ::mailroom::testing::EtcdCluster;

class EtcdClientE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<EtcdCluster>> cluster =
        EtcdCluster::Start(absl::StrCat(std::getenv("TEST_TMPDIR"), "/",
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name()));
    ASSERT_TRUE(cluster.ok()) << cluster.status();
    cluster_ = *std::move(cluster);
    EtcdClientOptions options;
    options.endpoints = cluster_->endpoints();
    client_ = std::make_unique<EtcdClient>(options, &transport_);
  }

  CurlHttpTransport transport_{CurlHttpTransport::Options{}};
  std::unique_ptr<EtcdCluster> cluster_;
  std::unique_ptr<EtcdClient> client_;
};

TEST_F(EtcdClientE2eTest, PutRangeDeleteRoundTrip) {
  gw::PutRequest put;
  put.set_key("/mailroom/test/a");
  put.set_value(std::string("binary\0value", 12));
  ASSERT_TRUE(client_->Put(put).ok());
  absl::StatusOr<absl::optional<gw::KeyValue>> got = client_->Get("/mailroom/test/a");
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ((*got)->value(), std::string("binary\0value", 12));
  EXPECT_GT((*got)->create_revision(), 0);
  gw::DeleteRangeRequest remove;
  remove.set_key("/mailroom/test/a");
  absl::StatusOr<gw::DeleteRangeResponse> deleted = client_->DeleteRange(remove);
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  EXPECT_EQ(deleted->deleted(), 1);
  got = client_->Get("/mailroom/test/a");
  ASSERT_TRUE(got.ok());
  EXPECT_FALSE(got->has_value());
}

TEST_F(EtcdClientE2eTest, OnlyOneCreatesAndRevokingTheLeaseFreesTheKey) {
  absl::StatusOr<gw::LeaseGrantResponse> lease = client_->LeaseGrant(absl::Seconds(10));
  ASSERT_TRUE(lease.ok()) << lease.status();
  absl::StatusOr<absl::optional<KeyHold>> first =
      client_->CreateIfAbsent("/mailroom/test/leader", "one", lease->id());
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_TRUE(first->has_value());
  gw::KeyValue holder;
  absl::StatusOr<absl::optional<KeyHold>> second =
      client_->CreateIfAbsent("/mailroom/test/leader", "two", 0, &holder);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_FALSE(second->has_value());
  EXPECT_EQ(holder.value(), "one");
  EXPECT_EQ(holder.lease(), lease->id());
  EXPECT_EQ(holder.create_revision(), (*first)->create_revision);
  ASSERT_TRUE(client_->LeaseRevoke(lease->id()).ok());
  absl::StatusOr<absl::optional<gw::KeyValue>> got = client_->Get("/mailroom/test/leader");
  ASSERT_TRUE(got.ok());
  EXPECT_FALSE(got->has_value());
  EXPECT_EQ(client_->LeaseKeepAlive(lease->id()).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(EtcdClientE2eTest, KeepAliveRenewsAndAnUnrenewedLeaseExpires) {
  absl::StatusOr<gw::LeaseGrantResponse> lease = client_->LeaseGrant(absl::Seconds(2));
  ASSERT_TRUE(lease.ok()) << lease.status();
  ASSERT_TRUE(client_->CreateIfAbsent("/mailroom/test/ttl", "x", lease->id()).ok());
  for (int i = 0; i < 4; ++i) {  // 3 s of renewals keep a 2 s lease alive
    absl::SleepFor(absl::Milliseconds(750));
    absl::StatusOr<absl::Duration> ttl = client_->LeaseKeepAlive(lease->id());
    ASSERT_TRUE(ttl.ok()) << ttl.status();
    EXPECT_EQ(*ttl, absl::Seconds(2));
  }
  absl::StatusOr<absl::optional<gw::KeyValue>> got = client_->Get("/mailroom/test/ttl");
  ASSERT_TRUE(got.ok());
  EXPECT_TRUE(got->has_value());
  absl::SleepFor(absl::Seconds(3.5));
  got = client_->Get("/mailroom/test/ttl");
  ASSERT_TRUE(got.ok());
  EXPECT_FALSE(got->has_value());
  EXPECT_EQ(client_->LeaseKeepAlive(lease->id()).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(EtcdClientE2eTest, HeldOperationsNeedTheSameLeaseAndCreation) {
  absl::StatusOr<gw::LeaseGrantResponse> lease = client_->LeaseGrant(absl::Seconds(10));
  ASSERT_TRUE(lease.ok()) << lease.status();
  absl::StatusOr<absl::optional<KeyHold>> hold =
      client_->CreateIfAbsent("/mailroom/test/held", "v1", lease->id());
  ASSERT_TRUE(hold.ok() && hold->has_value());
  absl::StatusOr<bool> put = client_->PutIfHeld("/mailroom/test/held", "v2", **hold);
  ASSERT_TRUE(put.ok()) << put.status();
  EXPECT_TRUE(*put);
  // Deleted and created again (by another holder): the old hold no longer holds.
  gw::DeleteRangeRequest remove;
  remove.set_key("/mailroom/test/held");
  ASSERT_TRUE(client_->DeleteRange(remove).ok());
  absl::StatusOr<absl::optional<KeyHold>> other =
      client_->CreateIfAbsent("/mailroom/test/held", "other", lease->id());
  ASSERT_TRUE(other.ok() && other->has_value());
  put = client_->PutIfHeld("/mailroom/test/held", "v3", **hold);
  ASSERT_TRUE(put.ok());
  EXPECT_FALSE(*put);
  absl::StatusOr<bool> deleted = client_->DeleteIfHeld("/mailroom/test/held", **hold);
  ASSERT_TRUE(deleted.ok());
  EXPECT_FALSE(*deleted);
  deleted = client_->DeleteIfHeld("/mailroom/test/held", **other);
  ASSERT_TRUE(deleted.ok());
  EXPECT_TRUE(*deleted);
}

TEST_F(EtcdClientE2eTest, EveryMemberNamesTheSameLeaderAndAKilledOneIsUnreachable) {
  uint64_t leader = 0;
  int leaders = 0;
  for (const std::string& endpoint : cluster_->endpoints()) {
    absl::StatusOr<gw::StatusResponse> status = client_->MemberStatus(endpoint, absl::Seconds(2));
    ASSERT_TRUE(status.ok()) << endpoint << ": " << status.status();
    EXPECT_NE(status->leader(), 0u);
    if (leader == 0) leader = status->leader();
    EXPECT_EQ(status->leader(), leader) << endpoint;
    if (status->header().member_id() == status->leader()) ++leaders;
    EXPECT_FALSE(status->version().empty());
  }
  EXPECT_EQ(leaders, 1);
  cluster_->Kill(2);
  EXPECT_FALSE(client_->MemberStatus(cluster_->endpoints()[2], absl::Seconds(2)).ok());
}

TEST_F(EtcdClientE2eTest, FailsOverWhenAMemberDies) {
  gw::PutRequest put;
  put.set_key("/mailroom/test/failover");
  put.set_value("before");
  ASSERT_TRUE(client_->Put(put).ok());
  const std::string first = client_->current_endpoint();
  cluster_->Kill(0);  // the first endpoint, where the client starts
  put.set_value("after");
  absl::StatusOr<gw::PutResponse> written = client_->Put(put);
  ASSERT_TRUE(written.ok()) << written.status();
  EXPECT_NE(client_->current_endpoint(), first);
  absl::StatusOr<absl::optional<gw::KeyValue>> got = client_->Get("/mailroom/test/failover");
  ASSERT_TRUE(got.ok() && got->has_value()) << got.status();
  EXPECT_EQ((*got)->value(), "after");
  // Back with its data, the member serves again.
  ASSERT_TRUE(cluster_->Restart(0).ok());
}

}  // namespace
}  // namespace mailroom::etcd
