// BrokerTokenSource and BrokerPermits against a mock broker stub and a fake clock: tokens
// are cached and refreshed at the broker's refresh point, a broker outage is invisible while
// the cached token is valid, and an outage does not turn into a stampede of calls.
#include "common/node/broker_client.h"

#include <atomic>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/base/redactor.h"
#include "absl/synchronization/mutex.h"
#include "tests/testing/fake_clock.h"
#include "gmock/gmock.h"
#include "tests/testing/capturing_alarms.h"
#include "gtest/gtest.h"
#include "proto/mailroom/broker/v1/broker_mock.grpc.pb.h"

namespace mailroom {
namespace {

namespace v1 = ::mailroom::broker::v1;
using ::testing::_;
using ::testing::DoAll;
using ::testing::Invoke;
using ::testing::Return;

v1::GetAccessTokenResponse TokenResponse(const std::string& token, int expires_in_s,
                                         int refresh_after_s) {
  v1::GetAccessTokenResponse response;
  response.set_access_token(token);
  response.set_token_fingerprint("fp-" + token);
  response.mutable_expires_in()->set_seconds(expires_in_s);
  response.mutable_refresh_after()->set_seconds(refresh_after_s);
  response.set_mailbox("noreply@example.test");
  response.set_smtp_host("smtp.office365.com");
  response.set_smtp_port(587);
  response.mutable_connection_timeout()->set_seconds(60);
  response.set_use_authentication(true);
  return response;
}

class BrokerTokenSourceTest : public ::testing::Test {
 protected:
  BrokerTokenSourceTest()
      : source_(&brokers_, &clock_, BrokerTokenSource::Options{"psn1", absl::Minutes(5),
                                                            absl::Seconds(5), absl::Seconds(1)}) {}

  void Answer(const v1::GetAccessTokenResponse& response) {
    EXPECT_CALL(stub_, GetAccessToken(_, _, _))
        .WillRepeatedly(DoAll(::testing::SetArgPointee<2>(response), Return(grpc::Status::OK)));
  }
  void BrokerDown() {
    EXPECT_CALL(stub_, GetAccessToken(_, _, _))
        .WillRepeatedly(Return(grpc::Status(grpc::StatusCode::UNAVAILABLE, "connection refused")));
  }

  FakeClock clock_;
  v1::MockTokenBrokerStub stub_;
  BrokerEndpoints brokers_{&stub_};
  BrokerTokenSource source_;
};

TEST_F(BrokerTokenSourceTest, CachesTheGrant) {
  Answer(TokenResponse("t1", 3600, 1800));
  for (int i = 0; i < 100; ++i) {
    absl::StatusOr<SubmissionGrant> grant = source_.Get();
    ASSERT_TRUE(grant.ok());
    EXPECT_EQ(grant->access_token, "t1");
    EXPECT_EQ(grant->smtp_port, 587);
  }
  EXPECT_EQ(source_.broker_calls(), 1);
}

// The proxy comes with the token; its password is registered with the redactor on arrival.
TEST_F(BrokerTokenSourceTest, TheGrantCarriesTheProxyAndItsPasswordIsRedacted) {
  v1::GetAccessTokenResponse response = TokenResponse("t1", 3600, 1800);
  response.mutable_smtp_proxy()->set_url("https://proxy.example.test:3129");
  response.mutable_smtp_proxy()->set_credentials("psn-proxy:Node-Pr0xy-Pass");
  response.mutable_smtp_proxy()->mutable_trust_store()->set_ca_bundle_pem("-----BEGIN CERT");
  Answer(response);
  absl::StatusOr<SubmissionGrant> grant = source_.Get();
  ASSERT_TRUE(grant.ok());
  EXPECT_EQ(grant->proxy.url, "https://proxy.example.test:3129");
  EXPECT_EQ(grant->proxy.credentials, "psn-proxy:Node-Pr0xy-Pass");
  EXPECT_EQ(grant->proxy.ca_pem, "-----BEGIN CERT");
  EXPECT_TRUE(grant->proxy.use_system_roots);
  const std::string line = absl::StrCat("sent Node-Pr0xy-Pass and ",
                                        absl::Base64Escape("psn-proxy:Node-Pr0xy-Pass"));
  EXPECT_EQ(Redactor::Global().Redact(line), "sent [REDACTED] and [REDACTED]");
}

TEST_F(BrokerTokenSourceTest, BrokerOutageIsInvisibleWhileTheTokenIsValid) {
  Answer(TokenResponse("t1", 3600, 1800));
  ASSERT_TRUE(source_.Get().ok());
  BrokerDown();
  clock_.Advance(absl::Minutes(50));  // 10 minutes left > 5 minutes minimum
  absl::StatusOr<SubmissionGrant> grant = source_.Get();
  ASSERT_TRUE(grant.ok());
  EXPECT_EQ(grant->access_token, "t1");
  clock_.Advance(absl::Minutes(6));  // 4 minutes left: no longer usable
  EXPECT_EQ(source_.Get().status().code(), absl::StatusCode::kUnavailable);
}

TEST_F(BrokerTokenSourceTest, HeldSaysWhatTheNodeHoldsWithoutAskingTheBroker) {
  HeldToken held = source_.held();
  EXPECT_FALSE(held.held);
  EXPECT_FALSE(held.usable);
  EXPECT_TRUE(held.last_error.ok());
  EXPECT_EQ(source_.broker_calls(), 0);

  v1::GetAccessTokenResponse response = TokenResponse("t1", 3000, 1500);
  response.mutable_age()->set_seconds(600);  // issued 10 minutes before the answer
  Answer(response);
  ASSERT_TRUE(source_.Get().ok());
  clock_.Advance(absl::Minutes(20));
  held = source_.held();
  EXPECT_TRUE(held.held);
  EXPECT_TRUE(held.usable);
  EXPECT_TRUE(held.authentication);
  EXPECT_EQ(held.lifetime, absl::Hours(1));
  EXPECT_EQ(held.expire_time, clock_.Now() + absl::Minutes(30));

  BrokerDown();
  clock_.Advance(absl::Minutes(27));  // 3 minutes left: below the 5-minute margin
  EXPECT_FALSE(source_.Get().ok());
  held = source_.held();
  EXPECT_TRUE(held.held);
  EXPECT_FALSE(held.usable);
  EXPECT_EQ(held.last_error.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(source_.broker_calls(), 2);
}

TEST_F(BrokerTokenSourceTest, AnOutageDoesNotCauseAStampede) {
  BrokerDown();
  for (int i = 0; i < 50; ++i) EXPECT_FALSE(source_.Get().ok());
  EXPECT_EQ(source_.broker_calls(), 1);
  clock_.Advance(absl::Seconds(5));
  EXPECT_FALSE(source_.Get().ok());
  EXPECT_EQ(source_.broker_calls(), 2);
}

TEST_F(BrokerTokenSourceTest, RefreshesInTheBackgroundAtTheBrokersRefreshPoint) {
  v1::GetAccessTokenResponse first = TokenResponse("t1", 3600, 1800);
  v1::GetAccessTokenResponse second = TokenResponse("t2", 3600, 1800);
  std::atomic<int> calls{0};
  EXPECT_CALL(stub_, GetAccessToken(_, _, _))
      .WillRepeatedly(Invoke([&](grpc::ClientContext*, const v1::GetAccessTokenRequest& request,
                                 v1::GetAccessTokenResponse* response) {
        EXPECT_EQ(request.node(), "psn1");
        *response = calls++ == 0 ? first : second;
        return grpc::Status::OK;
      }));
  source_.Start();
  for (int i = 0; i < 1000 && calls.load() < 1; ++i) absl::SleepFor(absl::Milliseconds(1));
  clock_.Advance(absl::Minutes(29));
  // The refresher has looked at the new time and gone back to waiting: nothing was due.
  ASSERT_TRUE(clock_.AwaitWaiters(1, absl::Seconds(10)));
  EXPECT_EQ(calls.load(), 1);
  clock_.Advance(absl::Minutes(1));
  for (int i = 0; i < 1000 && calls.load() < 2; ++i) absl::SleepFor(absl::Milliseconds(1));
  EXPECT_EQ(calls.load(), 2);
  // Waiting again means the refresh finished and the new token is stored.
  ASSERT_TRUE(clock_.AwaitWaiters(1, absl::Seconds(10)));
  EXPECT_EQ(source_.Get()->access_token, "t2");
  source_.Stop();
}

TEST_F(BrokerTokenSourceTest, ARejectedTokenIsReportedAndReplaced) {
  Answer(TokenResponse("t1", 3600, 1800));
  ASSERT_TRUE(source_.Get().ok());
  EXPECT_CALL(stub_, InvalidateAccessToken(_, _, _))
      .WillOnce(Invoke([](grpc::ClientContext*, const v1::InvalidateAccessTokenRequest& request,
                          v1::InvalidateAccessTokenResponse* response) {
        EXPECT_EQ(request.token_fingerprint(), "fp-t1");
        EXPECT_EQ(request.smtp_code(), 535);
        response->set_invalidated(true);
        return grpc::Status::OK;
      }));
  source_.ReportRejected("fp-t1", 535, "535 5.7.3 Authentication unsuccessful");
  Answer(TokenResponse("t2", 3600, 1800));
  EXPECT_EQ(source_.Get()->access_token, "t2");
  EXPECT_EQ(source_.broker_calls(), 2);
}

// The broker hands out a token issued at `issued` that lives `lifetime`: what it says of its
// age and time left depends on when it is asked.
void AnswerWithToken(v1::MockTokenBrokerStub& stub, FakeClock& clock, absl::Time issued,
                     absl::Duration lifetime) {
  EXPECT_CALL(stub, GetAccessToken(_, _, _))
      .WillRepeatedly(Invoke([&clock, issued, lifetime](grpc::ClientContext*,
                                                        const v1::GetAccessTokenRequest&,
                                                        v1::GetAccessTokenResponse* response) {
        const absl::Time now = clock.Now();
        *response = TokenResponse("short", absl::ToInt64Seconds(issued + lifetime - now),
                                  absl::ToInt64Seconds(issued + lifetime / 2 - now));
        response->mutable_age()->set_seconds(absl::ToInt64Seconds(now - issued));
        return grpc::Status::OK;
      }));
}

// A 3-minute token is used until an eighth of its life is left (22.5 s), not refused for
// having less than the 5 minutes a one-hour token keeps in hand.
TEST_F(BrokerTokenSourceTest, AShortLivedTokenIsUsedForMostOfItsLife) {
  AnswerWithToken(stub_, clock_, clock_.Now(), absl::Minutes(3));
  ASSERT_TRUE(source_.Get().ok()) << source_.Get().status();
  clock_.Advance(absl::Minutes(2));
  absl::StatusOr<SubmissionGrant> grant = source_.Get();
  ASSERT_TRUE(grant.ok()) << grant.status();
  EXPECT_EQ(grant->lifetime, absl::Minutes(3));
  EXPECT_EQ(source_.broker_calls(), 1);
  clock_.Advance(absl::Seconds(40));  // 20 s left
  EXPECT_FALSE(source_.Get().ok());
}

// A node that cannot get a token says so once (not at every retry), and clears it when it has
// one again.
TEST(BrokerTokenSourceAlarmTest, ANodeWithoutATokenRaisesOnceAndClearsOnRecovery) {
  FakeClock clock;
  v1::MockTokenBrokerStub stub;
  BrokerEndpoints brokers(&stub);
  ::mailroom::testing::CapturingAlarms alarms;
  BrokerTokenSource source(&brokers, &clock,
                           BrokerTokenSource::Options{"psn1", absl::Minutes(5), absl::Seconds(5),
                                                      absl::Seconds(1)},
                           &alarms);
  std::atomic<int> calls{0};
  std::atomic<bool> up{false};
  EXPECT_CALL(stub, GetAccessToken(_, _, _))
      .WillRepeatedly(Invoke([&](grpc::ClientContext*, const v1::GetAccessTokenRequest&,
                                 v1::GetAccessTokenResponse* response) {
        ++calls;
        if (!up.load()) return grpc::Status(grpc::StatusCode::UNAVAILABLE, "connection refused");
        *response = TokenResponse("t1", 3600, 1800);
        return grpc::Status::OK;
      }));
  source.Start();
  for (int retry = 1; retry <= 3; ++retry) {  // three failed attempts, 5 s apart
    for (int i = 0; i < 5000 && calls.load() < retry; ++i) absl::SleepFor(absl::Milliseconds(1));
    ASSERT_TRUE(clock.AwaitWaiters(1, absl::Seconds(10)));
    clock.Advance(absl::Seconds(5));
  }
  ASSERT_TRUE(clock.AwaitWaiters(1, absl::Seconds(10)));
  EXPECT_THAT(alarms.Events(),
              ::testing::ElementsAre("raise token-from-broker ALARM_SEVERITY_CRITICAL"));
  up = true;
  clock.Advance(absl::Seconds(5));
  for (int i = 0; i < 5000 && alarms.Events().size() < 2; ++i) {
    absl::SleepFor(absl::Milliseconds(1));
  }
  EXPECT_THAT(alarms.Events(),
              ::testing::ElementsAre("raise token-from-broker ALARM_SEVERITY_CRITICAL",
                                     "clear token-from-broker"));
  source.Stop();
}

TEST(BrokerPermitsTest, AcquireSendsNodeConnectionAndCounts) {
  v1::MockTokenBrokerStub stub;
  EXPECT_CALL(stub, AcquireSendPermit(_, _, _))
      .WillOnce(Invoke([](grpc::ClientContext*, const v1::AcquireSendPermitRequest& request,
                          v1::AcquireSendPermitResponse* response) {
        EXPECT_EQ(request.node(), "psn1");
        EXPECT_EQ(request.connection_id(), "conn-1");
        EXPECT_THAT(request.message_recipient_counts(), ::testing::ElementsAre(1, 3));
        response->set_granted(true);
        response->set_granted_messages(2);
        return grpc::Status::OK;
      }));
  BrokerEndpoints brokers(&stub);
  BrokerPermits permits(&brokers, "psn1");
  absl::StatusOr<v1::AcquireSendPermitResponse> response = permits.Acquire("conn-1", {1, 3});
  ASSERT_TRUE(response.ok());
  EXPECT_EQ(response->granted_messages(), 2);
}

// The mailbox pool: a source made for a pool mailbox asks for that mailbox's token (the default
// source names none), permits name the mailbox, and routes are asked for by purpose.
TEST_F(BrokerTokenSourceTest, APoolMailboxsSourceAsksForItsMailbox) {
  std::vector<std::string> asked;
  EXPECT_CALL(stub_, GetAccessToken(_, _, _))
      .WillRepeatedly(Invoke([&](grpc::ClientContext*, const v1::GetAccessTokenRequest& request,
                                 v1::GetAccessTokenResponse* response) {
        asked.push_back(request.mailbox());
        *response = TokenResponse("t1", 3600, 1800);
        response->set_mailbox(request.mailbox().empty() ? "noreply@example.test"
                                                        : request.mailbox());
        return grpc::Status::OK;
      }));
  std::unique_ptr<BrokerTokenSource> alerts = source_.ForMailbox("alerts@example.test");
  ASSERT_TRUE(source_.Get().ok());
  absl::StatusOr<SubmissionGrant> grant = alerts->Get();
  ASSERT_TRUE(grant.ok());
  EXPECT_EQ(grant->mailbox, "alerts@example.test");
  EXPECT_EQ(source_.Get()->mailbox, "noreply@example.test");  // each keeps its own grant
  EXPECT_THAT(asked, ::testing::ElementsAre("", "alerts@example.test"));
  // A refusal names the mailbox: a 535 5.7.139 moves that mailbox (and only it) to Graph.
  EXPECT_CALL(stub_, InvalidateAccessToken(_, _, _))
      .WillOnce(Invoke([](grpc::ClientContext*, const v1::InvalidateAccessTokenRequest& request,
                          v1::InvalidateAccessTokenResponse*) {
        EXPECT_EQ(request.mailbox(), "alerts@example.test");
        return grpc::Status::OK;
      }));
  alerts->ReportRejected(grant->token_fingerprint, 535, "535 5.7.139 Authentication unsuccessful");
}

TEST(BrokerPermitsTest, PermitsNameTheMailboxAndRoutesAreAskedByPurpose) {
  v1::MockTokenBrokerStub stub;
  EXPECT_CALL(stub, AcquireSendPermit(_, _, _))
      .WillOnce(Invoke([](grpc::ClientContext*, const v1::AcquireSendPermitRequest& request,
                          v1::AcquireSendPermitResponse* response) {
        EXPECT_EQ(request.mailbox(), "alerts@example.test");
        response->set_granted(true);
        return grpc::Status::OK;
      }));
  EXPECT_CALL(stub, ResolveMailRoute(_, _, _))
      .Times(2)
      .WillRepeatedly(Invoke([](grpc::ClientContext*, const v1::ResolveMailRouteRequest& request,
                                v1::ResolveMailRouteResponse* response) {
        EXPECT_EQ(request.purpose(), ::mailroom::common::v1::MAIL_PURPOSE_ALARMS);
        response->add_mailboxes("alerts@example.test");
        response->set_routed(true);
        response->set_from_mailbox(request.from().empty() ? "" : "alerts@example.test");
        return grpc::Status::OK;
      }));
  BrokerEndpoints brokers(&stub);
  BrokerPermits permits(&brokers, "psn1");
  EXPECT_TRUE(permits
                  .Acquire("conn-1", {1}, ::mailroom::common::v1::SEND_PRIORITY_URGENT, {},
                           "alerts@example.test")
                  .ok());
  absl::StatusOr<v1::ResolveMailRouteResponse> route =
      permits.ResolveMailRoute(::mailroom::common::v1::MAIL_PURPOSE_ALARMS);
  ASSERT_TRUE(route.ok());
  EXPECT_THAT(route->mailboxes(), ::testing::ElementsAre("alerts@example.test"));
  EXPECT_EQ(route->from_mailbox(), "");
  // With a From (a role node's save-time check): the broker is asked about it.
  route = permits.ResolveMailRoute(::mailroom::common::v1::MAIL_PURPOSE_ALARMS,
                                   "ise-alarms@example.test");
  ASSERT_TRUE(route.ok());
  EXPECT_EQ(route->from_mailbox(), "alerts@example.test");
}

// Issue 13: the node asks for the token of the mailbox's transport; when the broker says the
// mailbox uses Graph, it asks again for a Graph token at once, and keeps asking for that.
TEST_F(BrokerTokenSourceTest, FollowsTheMailboxsTransport) {
  v1::GetAccessTokenResponse smtp_token = TokenResponse("smtp-1", 3600, 1800);
  smtp_token.set_transport(v1::MAIL_TRANSPORT_GRAPH);
  smtp_token.set_graph_endpoint("https://graph.test");
  v1::GetAccessTokenResponse graph_token = smtp_token;
  graph_token.set_access_token("graph-1");
  std::vector<v1::MailTransport> asked;
  EXPECT_CALL(stub_, GetAccessToken(_, _, _))
      .WillRepeatedly(Invoke([&](grpc::ClientContext*, const v1::GetAccessTokenRequest& request,
                                 v1::GetAccessTokenResponse* response) {
        asked.push_back(request.transport());
        *response = request.transport() == v1::MAIL_TRANSPORT_GRAPH ? graph_token : smtp_token;
        return grpc::Status::OK;
      }));
  absl::StatusOr<SubmissionGrant> grant = source_.Get();
  ASSERT_TRUE(grant.ok());
  EXPECT_EQ(grant->access_token, "graph-1");
  EXPECT_EQ(grant->transport, v1::MAIL_TRANSPORT_GRAPH);
  EXPECT_EQ(grant->graph_endpoint, "https://graph.test");
  EXPECT_EQ(asked, (std::vector<v1::MailTransport>{v1::MAIL_TRANSPORT_SMTP,
                                                   v1::MAIL_TRANSPORT_GRAPH}));
}

}  // namespace
}  // namespace mailroom
