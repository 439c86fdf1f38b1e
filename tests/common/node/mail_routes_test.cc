// Tests of MailRoutes against a mock TokenBroker stub: caching, etag and TTL refresh, and the
// default mailbox while the broker cannot say.
#include "common/node/mail_routes.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/mailroom/broker/v1/broker_mock.grpc.pb.h"
#include "tests/testing/fake_clock.h"

namespace mailroom {
namespace {

namespace bv1 = ::mailroom::broker::v1;
namespace cv1 = ::mailroom::common::v1;
using ::testing::_;
using ::testing::ElementsAre;
using ::testing::Invoke;

class MailRoutesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ON_CALL(stub_, ResolveMailRoute(_, _, _))
        .WillByDefault(Invoke([this](grpc::ClientContext*, const bv1::ResolveMailRouteRequest&,
                                     bv1::ResolveMailRouteResponse* response) {
          ++calls_;
          if (!answer_.ok()) return answer_;
          response->set_settings_etag(etag_);
          response->set_routed(true);
          for (const std::string& mailbox : route_) response->add_mailboxes(mailbox);
          return grpc::Status::OK;
        }));
  }

  FakeClock clock_;
  ::testing::NiceMock<bv1::MockTokenBrokerStub> stub_;
  BrokerEndpoints brokers_{&stub_};
  BrokerPermits permits_{&brokers_, "psn1"};
  MailRoutes routes_{&permits_, &clock_, absl::Seconds(5)};
  int calls_ = 0;
  grpc::Status answer_ = grpc::Status::OK;
  std::string etag_ = "etag-1";
  std::vector<std::string> route_ = {"guests@example.test", "noreply@example.test"};
};

TEST_F(MailRoutesTest, AsksOnceAndAnswersFromTheCacheUntilTheTtl) {
  EXPECT_EQ(routes_.Cached(cv1::MAIL_PURPOSE_GUEST_CREDENTIALS), absl::nullopt);
  EXPECT_THAT(routes_.Of(cv1::MAIL_PURPOSE_GUEST_CREDENTIALS),
              ElementsAre("guests@example.test", "noreply@example.test"));
  route_ = {"alerts@example.test"};
  EXPECT_THAT(routes_.Of(cv1::MAIL_PURPOSE_GUEST_CREDENTIALS),
              ElementsAre("guests@example.test", "noreply@example.test"));
  EXPECT_EQ(calls_, 1);
  clock_.Advance(MailRoutes::kRouteTtl);
  EXPECT_THAT(routes_.Of(cv1::MAIL_PURPOSE_GUEST_CREDENTIALS), ElementsAre("alerts@example.test"));
  EXPECT_EQ(calls_, 2);
}

TEST_F(MailRoutesTest, UnroutedMailGoesThroughTheDefaultMailboxWithoutAsking) {
  EXPECT_THAT(routes_.Of(cv1::MAIL_PURPOSE_UNSPECIFIED), ElementsAre(""));
  EXPECT_EQ(calls_, 0);
}

TEST_F(MailRoutesTest, NewSettingsOrAForgottenMailboxMakeThemAskedAgain) {
  routes_.Of(cv1::MAIL_PURPOSE_ALARMS);
  routes_.NoteSettingsEtag("etag-1");  // the same settings: kept
  EXPECT_TRUE(routes_.Cached(cv1::MAIL_PURPOSE_ALARMS).has_value());
  routes_.NoteSettingsEtag("etag-2");
  EXPECT_EQ(routes_.Cached(cv1::MAIL_PURPOSE_ALARMS), absl::nullopt);
  etag_ = "etag-2";
  routes_.Of(cv1::MAIL_PURPOSE_ALARMS);
  routes_.Forget();
  EXPECT_EQ(routes_.Cached(cv1::MAIL_PURPOSE_ALARMS), absl::nullopt);
  EXPECT_EQ(calls_, 2);
}

TEST_F(MailRoutesTest, WhileTheBrokerCannotSayTheDefaultMailboxCarriesItUntilTheRetry) {
  answer_ = grpc::Status(grpc::StatusCode::UNAVAILABLE, "broker away");
  EXPECT_THAT(routes_.Of(cv1::MAIL_PURPOSE_ALARMS), ElementsAre(""));
  EXPECT_THAT(routes_.Of(cv1::MAIL_PURPOSE_ALARMS), ElementsAre(""));
  EXPECT_EQ(calls_, 1);
  answer_ = grpc::Status::OK;
  clock_.Advance(absl::Seconds(5));
  EXPECT_THAT(routes_.Of(cv1::MAIL_PURPOSE_ALARMS),
              ElementsAre("guests@example.test", "noreply@example.test"));
}

TEST_F(MailRoutesTest, AnOlderBrokerIsAskedAgainOnlyAfterTenMinutes) {
  answer_ = grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "unknown method ResolveMailRoute");
  routes_.Of(cv1::MAIL_PURPOSE_ALARMS);
  clock_.Advance(absl::Minutes(9));
  routes_.Of(cv1::MAIL_PURPOSE_ALARMS);
  EXPECT_EQ(calls_, 1);
  clock_.Advance(absl::Minutes(1));
  routes_.Of(cv1::MAIL_PURPOSE_ALARMS);
  EXPECT_EQ(calls_, 2);
}

}  // namespace
}  // namespace mailroom
