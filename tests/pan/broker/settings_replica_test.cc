// SettingsStore with a SettingsReplica on a real etcd (one member on loopback): the leader's
// save reaches etcd before its file; a standby takes the leader's record up into its own file;
// a broker that does not hold the election key as it won it saves nothing; a record sealed
// under another key is refused and changes nothing; an elected broker writes its file's
// record to an etcd that holds none.
#include "pan/broker/settings_replica.h"

#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/crypto/aes_gcm.h"
#include "common/etcd/etcd_client.h"
#include "common/rpc/http_transport.h"
#include "common/rpc/status_grpc.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "pan/broker/leader_fence.h"
#include "pan/broker/settings_store.h"
#include "tests/testing/etcd_cluster.h"

namespace mailroom::broker {
namespace {

using ::mailroom::testing::EtcdCluster;
using ::testing::HasSubstr;
using SyncMode = SettingsStore::SyncMode;

constexpr char kElectionKey[] = "/mailroom/broker/leader";
constexpr char kSecret[] = "Zx9~replicated.SECRET-value_42";

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

SavedSettings Saved(const std::string& etag) {
  SavedSettings saved;
  saved.settings.set_username("noreply@contoso.com");
  saved.settings.set_tenant_id("11111111-2222-3333-4444-555555555555");
  saved.settings.set_client_id("aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee");
  saved.settings.mutable_client_secret()->set_secret(kSecret);
  saved.state.set_updated_by("admin");
  saved.state.set_etag(etag);
  return saved;
}

// One broker: its own directory, key file, state file, fence and replica.
struct TestBroker {
  std::string dir;
  std::unique_ptr<LeaderFence> fence;
  std::unique_ptr<SettingsReplica> replica;
  std::unique_ptr<SettingsStore> store;
  std::string state_path() const { return dir + "/state.bin"; }
};

class SettingsReplicaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = absl::StrCat(std::getenv("TEST_TMPDIR"), "/",
                         ::testing::UnitTest::GetInstance()->current_test_info()->name());
    ASSERT_EQ(system(absl::StrCat("rm -rf ", root_, " && mkdir -p ", root_).c_str()), 0);
    absl::StatusOr<std::unique_ptr<EtcdCluster>> cluster = EtcdCluster::Start(root_ + "/etcd", 1);
    ASSERT_TRUE(cluster.ok()) << cluster.status();
    cluster_ = *std::move(cluster);
    etcd::EtcdClientOptions options;
    options.endpoints = cluster_->endpoints();
    etcd_ = std::make_unique<etcd::EtcdClient>(options, &transport_);
    key_ = *crypto::LoadOrCreateKeyFile(root_ + "/broker.key");
  }

  TestBroker MakeBroker(const std::string& name, const std::string& key) {
    TestBroker broker;
    broker.dir = absl::StrCat(root_, "/", name);
    EXPECT_EQ(system(absl::StrCat("mkdir -p ", broker.dir).c_str()), 0);
    broker.fence = std::make_unique<LeaderFence>(LeaderFenceOptions{}, etcd_.get());
    broker.replica =
        std::make_unique<SettingsReplica>(SettingsReplicaOptions{}, broker.fence.get());
    broker.store = std::make_unique<SettingsStore>(broker.state_path(), key, broker.replica.get());
    return broker;
  }

  // Wins the election key the way LeaderElection does (a lease and a create transaction).
  etcd::KeyHold WinElection() {
    absl::StatusOr<etcd::gw::LeaseGrantResponse> lease = etcd_->LeaseGrant(absl::Seconds(30));
    EXPECT_TRUE(lease.ok()) << lease.status();
    absl::StatusOr<absl::optional<etcd::KeyHold>> hold =
        etcd_->CreateIfAbsent(kElectionKey, "broker-a:1", lease->id());
    EXPECT_TRUE(hold.ok() && hold->has_value());
    return **hold;
  }

  std::string root_;
  std::unique_ptr<EtcdCluster> cluster_;
  CurlHttpTransport transport_{CurlHttpTransport::Options{}};
  std::unique_ptr<etcd::EtcdClient> etcd_;
  std::string key_;
};

TEST_F(SettingsReplicaTest, TheLeadersSaveReachesAStandbyThroughEtcd) {
  TestBroker leader = MakeBroker("a", key_);
  TestBroker standby = MakeBroker("b", key_);
  leader.replica->Guard(WinElection());
  ASSERT_TRUE(leader.store->Save(Saved("etag-1")).ok());

  absl::StatusOr<absl::optional<std::string>> record = leader.replica->Fetch();
  ASSERT_TRUE(record.ok() && record->has_value());
  EXPECT_EQ(**record, ReadAll(leader.state_path()));
  EXPECT_THAT(**record, ::testing::Not(HasSubstr(kSecret)));  // only ciphertext in etcd

  absl::StatusOr<bool> changed = standby.store->Sync(SyncMode::kStandby);
  ASSERT_TRUE(changed.ok()) << changed.status();
  EXPECT_TRUE(*changed);
  absl::StatusOr<absl::optional<SavedSettings>> loaded = standby.store->Load();
  ASSERT_TRUE(loaded.ok() && loaded->has_value()) << loaded.status();
  EXPECT_EQ((*loaded)->state.etag(), "etag-1");
  EXPECT_EQ((*loaded)->settings.client_secret().secret(), kSecret);

  changed = standby.store->Sync(SyncMode::kStandby);
  ASSERT_TRUE(changed.ok());
  EXPECT_FALSE(*changed);  // already the same record
}

TEST_F(SettingsReplicaTest, ABrokerWithoutTheElectionKeySavesNothing) {
  TestBroker standby = MakeBroker("b", key_);
  const absl::Status unguarded = standby.store->Save(Saved("etag-1"));
  EXPECT_EQ(ReasonOf(unguarded), "NOT_LEADER") << unguarded;
  EXPECT_NE(access(standby.state_path().c_str(), F_OK), 0);  // nor its file

  // Elected once, but the key was since lost and won by another broker (a new
  // create_revision): its writes are refused.
  const etcd::KeyHold old_term = WinElection();
  ASSERT_TRUE(etcd_->LeaseRevoke(old_term.lease).ok());
  WinElection();
  standby.replica->Guard(old_term);
  const absl::Status stale = standby.store->Save(Saved("etag-2"));
  EXPECT_EQ(ReasonOf(stale), "NOT_LEADER") << stale;
  absl::StatusOr<absl::optional<std::string>> record = standby.replica->Fetch();
  ASSERT_TRUE(record.ok());
  EXPECT_FALSE(record->has_value());
}

TEST_F(SettingsReplicaTest, ARecordSealedUnderAnotherKeyIsRefusedAndChangesNothing) {
  TestBroker leader = MakeBroker("a", key_);
  leader.replica->Guard(WinElection());
  ASSERT_TRUE(leader.store->Save(Saved("etag-1")).ok());
  const std::string other_key = *crypto::LoadOrCreateKeyFile(root_ + "/other.key");
  TestBroker stranger = MakeBroker("c", other_key);

  const absl::StatusOr<bool> changed = stranger.store->Sync(SyncMode::kStandby);
  EXPECT_EQ(changed.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(changed.status().message(), HasSubstr("sealed under another key file"));
  EXPECT_NE(access(stranger.state_path().c_str(), F_OK), 0);
}

TEST_F(SettingsReplicaTest, AnElectedBrokerPublishesItsFileWhenEtcdHoldsNoRecord) {
  // Saved while the brokers ran without etcd: the record is only in the file.
  {
    SettingsStore file_only(root_ + "/a/state.bin", key_);
    ASSERT_EQ(system(absl::StrCat("mkdir -p ", root_, "/a").c_str()), 0);
    ASSERT_TRUE(file_only.Save(Saved("etag-local")).ok());
  }
  TestBroker broker = MakeBroker("a", key_);
  absl::StatusOr<bool> changed = broker.store->Sync(SyncMode::kStandby);
  ASSERT_TRUE(changed.ok());
  EXPECT_FALSE(*changed);
  EXPECT_FALSE(broker.replica->Fetch()->has_value());  // a standby writes nothing

  broker.replica->Guard(WinElection());
  changed = broker.store->Sync(SyncMode::kElected);
  ASSERT_TRUE(changed.ok()) << changed.status();
  EXPECT_FALSE(*changed);
  absl::StatusOr<absl::optional<std::string>> record = broker.replica->Fetch();
  ASSERT_TRUE(record.ok() && record->has_value());
  EXPECT_EQ(**record, ReadAll(broker.state_path()));
}

TEST_F(SettingsReplicaTest, AnElectedBrokerTakesUpANewerRecordOverItsOwnFile) {
  TestBroker a = MakeBroker("a", key_);
  TestBroker b = MakeBroker("b", key_);
  const etcd::KeyHold first = WinElection();
  a.replica->Guard(first);
  ASSERT_TRUE(a.store->Save(Saved("etag-1")).ok());
  ASSERT_TRUE(b.store->Sync(SyncMode::kStandby).ok());
  // b leads next and saves new settings while a is down; then a is elected again.
  ASSERT_TRUE(etcd_->LeaseRevoke(first.lease).ok());
  const etcd::KeyHold second = WinElection();
  b.replica->Guard(second);
  ASSERT_TRUE(b.store->Save(Saved("etag-2")).ok());
  ASSERT_TRUE(etcd_->LeaseRevoke(second.lease).ok());
  a.replica->Guard(WinElection());

  absl::StatusOr<bool> changed = a.store->Sync(SyncMode::kElected);
  ASSERT_TRUE(changed.ok()) << changed.status();
  EXPECT_TRUE(*changed);
  absl::StatusOr<absl::optional<SavedSettings>> loaded = a.store->Load();
  ASSERT_TRUE(loaded.ok() && loaded->has_value());
  EXPECT_EQ((*loaded)->state.etag(), "etag-2");
}

}  // namespace
}  // namespace mailroom::broker
