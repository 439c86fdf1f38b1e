#include "common/node/broker_endpoints.h"

#include <memory>
#include <utility>
#include <vector>

#include "common/rpc/status_grpc.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/mailroom/broker/v1/broker_mock.grpc.pb.h"

namespace mailroom {
namespace {

namespace v1 = ::mailroom::broker::v1;
using ::testing::_;
using ::testing::Return;

grpc::Status NotLeader() {
  return ToGrpcStatus(WithReason(absl::UnavailableError("this broker does not lead"), "NOT_LEADER"));
}
grpc::Status Unreachable() {
  return grpc::Status(grpc::StatusCode::UNAVAILABLE, "failed to connect to all addresses");
}

// Two brokers "a" and "b"; the test keeps pointers to their mocks.
class BrokerEndpointsTest : public ::testing::Test {
 protected:
  BrokerEndpointsTest() {
    auto a = std::make_unique<::testing::StrictMock<v1::MockTokenBrokerStub>>();
    auto b = std::make_unique<::testing::StrictMock<v1::MockTokenBrokerStub>>();
    a_ = a.get();
    b_ = b.get();
    std::vector<BrokerEndpoints::Endpoint> endpoints;
    endpoints.push_back({"a:7100", std::move(a)});
    endpoints.push_back({"b:7100", std::move(b)});
    brokers_ = std::make_unique<BrokerEndpoints>(std::move(endpoints));
  }

  absl::Status Token() {
    return brokers_->Call([](BrokerEndpoints::Stub* stub) {
      grpc::ClientContext context;
      v1::GetAccessTokenResponse response;
      return stub->GetAccessToken(&context, v1::GetAccessTokenRequest(), &response);
    });
  }

  ::testing::StrictMock<v1::MockTokenBrokerStub>* a_;
  ::testing::StrictMock<v1::MockTokenBrokerStub>* b_;
  std::unique_ptr<BrokerEndpoints> brokers_;
};

TEST_F(BrokerEndpointsTest, AStandbySendsTheCallOnToTheLeaderWhichIsThenCalledFirst) {
  EXPECT_CALL(*a_, GetAccessToken(_, _, _)).WillOnce(Return(NotLeader()));
  EXPECT_CALL(*b_, GetAccessToken(_, _, _)).Times(2).WillRepeatedly(Return(grpc::Status::OK));
  EXPECT_TRUE(Token().ok());
  EXPECT_EQ(brokers_->current_address(), "b:7100");
  EXPECT_TRUE(Token().ok()) << "the second call goes straight to b (a would fail it: StrictMock)";
  EXPECT_EQ(brokers_->switches(), 1);
}

TEST_F(BrokerEndpointsTest, AnUnreachableBrokerIsPassedOver) {
  EXPECT_CALL(*a_, GetAccessToken(_, _, _)).WillOnce(Return(Unreachable()));
  EXPECT_CALL(*b_, GetAccessToken(_, _, _)).WillOnce(Return(grpc::Status::OK));
  EXPECT_TRUE(Token().ok());
  EXPECT_EQ(brokers_->current_address(), "b:7100");
}

TEST_F(BrokerEndpointsTest, WithNoLeaderTheCallFailsUnavailableNamingTheRealCause) {
  EXPECT_CALL(*a_, GetAccessToken(_, _, _)).WillOnce(Return(Unreachable()));
  EXPECT_CALL(*b_, GetAccessToken(_, _, _)).WillOnce(Return(NotLeader()));
  const absl::Status status = Token();
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(status.message(), "no broker leads now (failed to connect to all addresses)")
      << "the unreachable leader's error, not the standby's words";
  EXPECT_EQ(ReasonOf(status), "NOT_LEADER") << "a standby answered: an election is under way";
  EXPECT_EQ(brokers_->current_address(), "a:7100") << "unchanged when nobody answered";
  EXPECT_EQ(brokers_->switches(), 0);
}

TEST_F(BrokerEndpointsTest, WithEveryBrokerUnreachableTheCallIsPlainlyUnavailable) {
  EXPECT_CALL(*a_, GetAccessToken(_, _, _)).WillOnce(Return(Unreachable()));
  EXPECT_CALL(*b_, GetAccessToken(_, _, _)).WillOnce(Return(Unreachable()));
  const absl::Status status = Token();
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(ReasonOf(status), "") << "no standby spoke: the brokers are away, not electing";
}

TEST_F(BrokerEndpointsTest, WhenEveryBrokerIsAStandbyTheCallSaysNotLeader) {
  EXPECT_CALL(*a_, GetAccessToken(_, _, _)).WillOnce(Return(NotLeader()));
  EXPECT_CALL(*b_, GetAccessToken(_, _, _)).WillOnce(Return(NotLeader()));
  const absl::Status status = Token();
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(ReasonOf(status), "NOT_LEADER");
}

TEST_F(BrokerEndpointsTest, TheLeadersOwnErrorIsReturnedWithoutAskingAnother) {
  EXPECT_CALL(*a_, GetAccessToken(_, _, _))
      .WillOnce(Return(ToGrpcStatus(WithReason(
          absl::UnavailableError("the token endpoint cannot be reached"), "TOKEN_ENDPOINT"))))
      .WillOnce(Return(grpc::Status(grpc::StatusCode::PERMISSION_DENIED, "not a role node")));
  EXPECT_EQ(Token().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(Token().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(brokers_->current_address(), "a:7100");
}

TEST_F(BrokerEndpointsTest, ATimeoutEndsTheCallAndTheNextStartsWithTheOtherBroker) {
  EXPECT_CALL(*a_, GetAccessToken(_, _, _))
      .WillOnce(Return(grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "Deadline Exceeded")));
  EXPECT_EQ(Token().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(brokers_->current_address(), "b:7100");
  EXPECT_CALL(*b_, GetAccessToken(_, _, _)).WillOnce(Return(grpc::Status::OK));
  EXPECT_TRUE(Token().ok());
}

TEST(BrokerEndpointsThreeTest, AStandbyNamingTheLeaderSendsTheCallStraightThere) {
  std::vector<BrokerEndpoints::Endpoint> endpoints;
  std::vector<::testing::StrictMock<v1::MockTokenBrokerStub>*> mocks;
  for (const char* address : {"a:7100", "b:7100", "c:7100"}) {
    auto mock = std::make_unique<::testing::StrictMock<v1::MockTokenBrokerStub>>();
    mocks.push_back(mock.get());
    endpoints.push_back({address, std::move(mock)});
  }
  BrokerEndpoints brokers(std::move(endpoints));
  EXPECT_CALL(*mocks[0], GetAccessToken(_, _, _))
      .WillOnce(Return(ToGrpcStatus(WithLeaderAddress(
          WithReason(absl::UnavailableError("standing by"), "NOT_LEADER"), "c:7100"))));
  EXPECT_CALL(*mocks[2], GetAccessToken(_, _, _)).WillOnce(Return(grpc::Status::OK));
  const absl::Status status = brokers.Call([](BrokerEndpoints::Stub* stub) {
    grpc::ClientContext context;
    v1::GetAccessTokenResponse response;
    return stub->GetAccessToken(&context, v1::GetAccessTokenRequest(), &response);
  });
  EXPECT_TRUE(status.ok()) << status;
  EXPECT_EQ(brokers.current_address(), "c:7100") << "b was never asked (StrictMock)";
}

TEST(BrokerEndpointsSingleTest, OneBrokerIsCalledOnceWhateverItAnswers) {
  ::testing::StrictMock<v1::MockTokenBrokerStub> stub;
  BrokerEndpoints brokers(&stub);
  EXPECT_CALL(stub, GetAccessToken(_, _, _)).WillOnce(Return(Unreachable()));
  const absl::Status status = brokers.Call([](BrokerEndpoints::Stub* s) {
    grpc::ClientContext context;
    v1::GetAccessTokenResponse response;
    return s->GetAccessToken(&context, v1::GetAccessTokenRequest(), &response);
  });
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace mailroom
