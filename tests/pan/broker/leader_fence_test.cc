#include "pan/broker/leader_fence.h"

#include <memory>
#include <string>

#include "absl/strings/escaping.h"
#include "common/rpc/status_grpc.h"
#include "gtest/gtest.h"
#include "tests/testing/fake_http_transport.h"

namespace mailroom::broker {
namespace {

using ::mailroom::testing::FakeHttpTransport;

constexpr char kWritten[] = R"({"header":{"revision":"12"},"succeeded":true})";
constexpr char kNotHeld[] = R"({"header":{"revision":"13"},"succeeded":false})";

class LeaderFenceTest : public ::testing::Test {
 protected:
  LeaderFenceTest() {
    etcd::EtcdClientOptions options;
    options.endpoints = {"http://127.0.0.1:2379"};
    etcd_ = std::make_unique<etcd::EtcdClient>(options, &transport_);
    fence_ = std::make_unique<LeaderFence>(LeaderFenceOptions{}, etcd_.get());
  }

  FakeHttpTransport transport_;
  std::unique_ptr<etcd::EtcdClient> etcd_;
  std::unique_ptr<LeaderFence> fence_;
};

TEST_F(LeaderFenceTest, GuardsNothingUntilATermIsGuarded) {
  EXPECT_FALSE(fence_->term().has_value());
  fence_->Guard(etcd::KeyHold{5, 10});
  ASSERT_TRUE(fence_->term().has_value());
  EXPECT_EQ(fence_->term()->lease, 5);
  fence_->Drop();
  EXPECT_FALSE(fence_->term().has_value());
}

TEST_F(LeaderFenceTest, WritesUnderTheElectionKeyAsTheTermHoldsIt) {
  fence_->Guard(etcd::KeyHold{5, 10});
  transport_.EnqueueJson(200, kWritten);
  ASSERT_TRUE(fence_->Put("test", "/records/a", "value", *fence_->term()).ok());
  const HttpRequest txn = transport_.requests()[0];
  EXPECT_EQ(txn.url, "http://127.0.0.1:2379/v3/kv/txn");
  EXPECT_NE(txn.form_body.find(absl::Base64Escape("/mailroom/broker/leader")), std::string::npos);
  EXPECT_NE(txn.form_body.find(R"("create_revision":"10")"), std::string::npos);
  EXPECT_NE(txn.form_body.find(absl::Base64Escape("/records/a")), std::string::npos);
  EXPECT_TRUE(fence_->term().has_value());
}

TEST_F(LeaderFenceTest, AKeyHeldOtherwiseIsNotLeaderAndEndsTheTerm) {
  fence_->Guard(etcd::KeyHold{5, 10});
  transport_.EnqueueJson(200, kNotHeld);
  const absl::Status lost = fence_->Put("test", "/records/a", "value", etcd::KeyHold{5, 10});
  EXPECT_EQ(lost.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(ReasonOf(lost), "NOT_LEADER");
  EXPECT_EQ(lost.message(), "test: the election key is no longer this broker's");
  EXPECT_FALSE(fence_->term().has_value());
}

TEST_F(LeaderFenceTest, AnOldTermsFailureLeavesANewTermGuarded) {
  fence_->Guard(etcd::KeyHold{7, 20});
  transport_.EnqueueJson(200, kNotHeld);
  EXPECT_EQ(ReasonOf(fence_->Put("test", "/records/a", "value", etcd::KeyHold{5, 10})),
            "NOT_LEADER");
  ASSERT_TRUE(fence_->term().has_value());
  EXPECT_EQ(fence_->term()->create_revision, 20);
}

TEST_F(LeaderFenceTest, EtcdOutOfReachIsEtcdsErrorAndKeepsTheTerm) {
  fence_->Guard(etcd::KeyHold{5, 10});
  transport_.Enqueue(absl::DeadlineExceededError("POST http://127.0.0.1:2379/v3/kv/txn: timeout"));
  const absl::Status cut_off = fence_->Put("test", "/records/a", "value", *fence_->term());
  EXPECT_FALSE(cut_off.ok());
  EXPECT_NE(ReasonOf(cut_off), "NOT_LEADER");
  EXPECT_TRUE(fence_->term().has_value());
}

}  // namespace
}  // namespace mailroom::broker
