// TransportFallback: when a mailbox with SMTP and Graph fallback moves to Graph and back.
#include "pan/broker/transport_fallback.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/fake_clock.h"

namespace mailroom::broker {
namespace {

using ::testing::HasSubstr;

constexpr char kDisabled[] =
    "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the "
    "Mailbox.";

class TransportFallbackTest : public ::testing::Test {
 protected:
  TransportFallbackTest() : fallback_(&clock_, FallbackPolicy{5, absl::Minutes(2)}) {
    fallback_.Reset(true, v1::EffectiveTransport(), clock_.Now());
  }

  absl::Time Since() const {
    return absl::FromUnixSeconds(fallback_.state().since().seconds());
  }

  FakeClock clock_;
  TransportFallback fallback_;
};

TEST_F(TransportFallbackTest, StartsOnSmtpSinceTheSettingsWereSaved) {
  EXPECT_EQ(fallback_.effective(), v1::MAIL_TRANSPORT_SMTP);
  EXPECT_EQ(Since(), clock_.Now());
  EXPECT_EQ(fallback_.state().reason(), "");
}

TEST_F(TransportFallbackTest, SmtpAuthDisabledMovesToGraphAtOnceAndOnlyOnce) {
  clock_.Advance(absl::Minutes(3));
  EXPECT_TRUE(fallback_.OnSmtpAuthDisabled("psn1", kDisabled));
  EXPECT_EQ(fallback_.effective(), v1::MAIL_TRANSPORT_GRAPH);
  EXPECT_EQ(Since(), clock_.Now());
  EXPECT_THAT(fallback_.state().reason(), HasSubstr("psn1"));
  EXPECT_THAT(fallback_.state().reason(), HasSubstr("5.7.139"));
  // Other nodes that still had SMTP tokens report it too: no second move.
  clock_.Advance(absl::Seconds(5));
  EXPECT_FALSE(fallback_.OnSmtpAuthDisabled("psn2", kDisabled));
  EXPECT_EQ(Since(), clock_.Now() - absl::Seconds(5));
}

TEST_F(TransportFallbackTest, OneBlipOfConnectFailuresDoesNotMove) {
  // Five quick failures (nodes retrying fast) are not an outage yet.
  for (int i = 0; i < 5; ++i) {
    EXPECT_FALSE(fallback_.OnSmtpConnectFailure("psn1", "Connection refused"));
    clock_.Advance(absl::Seconds(1));
  }
  EXPECT_EQ(fallback_.effective(), v1::MAIL_TRANSPORT_SMTP);
  // The endpoint answers again: the run is over.
  fallback_.OnSmtpDelivered();
  clock_.Advance(absl::Minutes(5));
  EXPECT_FALSE(fallback_.OnSmtpConnectFailure("psn1", "Connection refused"));
  EXPECT_EQ(fallback_.effective(), v1::MAIL_TRANSPORT_SMTP);
}

TEST_F(TransportFallbackTest, FewFailuresOverALongTimeDoNotMove) {
  for (int i = 0; i < 4; ++i) {
    EXPECT_FALSE(fallback_.OnSmtpConnectFailure("psn1", "connect timed out"));
    clock_.Advance(absl::Minutes(2));
  }
  EXPECT_EQ(fallback_.effective(), v1::MAIL_TRANSPORT_SMTP);
}

TEST_F(TransportFallbackTest, AnOutageThatLastsMovesToGraph) {
  for (int i = 0; i < 4; ++i) {
    EXPECT_FALSE(fallback_.OnSmtpConnectFailure(i % 2 ? "psn1" : "pan", "Connection refused"));
    clock_.Advance(absl::Seconds(40));
  }
  EXPECT_TRUE(fallback_.OnSmtpConnectFailure("psn2", "Connection refused"));
  EXPECT_EQ(fallback_.effective(), v1::MAIL_TRANSPORT_GRAPH);
  EXPECT_THAT(fallback_.state().reason(), HasSubstr("5 connect failures in a row over 2m40s"));
  EXPECT_THAT(fallback_.state().reason(), HasSubstr("psn2"));
}

TEST_F(TransportFallbackTest, APassedSmtpTestMovesBackAndStartsAFreshRun) {
  ASSERT_TRUE(fallback_.OnSmtpAuthDisabled("psn1", kDisabled));
  clock_.Advance(absl::Hours(1));
  // Failures reported while on Graph are not SMTP's.
  EXPECT_FALSE(fallback_.OnSmtpConnectFailure("psn1", "Connection refused"));
  EXPECT_TRUE(fallback_.OnSmtpTestPassed());
  EXPECT_EQ(fallback_.effective(), v1::MAIL_TRANSPORT_SMTP);
  EXPECT_EQ(Since(), clock_.Now());
  EXPECT_THAT(fallback_.state().reason(), HasSubstr("SMTP Test Connection of the mailbox passed"));
  EXPECT_FALSE(fallback_.OnSmtpTestPassed());
  EXPECT_FALSE(fallback_.OnSmtpConnectFailure("psn1", "Connection refused"));
}

TEST_F(TransportFallbackTest, WithoutFallbackNothingMoves) {
  fallback_.Reset(false, v1::EffectiveTransport(), clock_.Now());
  EXPECT_FALSE(fallback_.OnSmtpAuthDisabled("psn1", kDisabled));
  for (int i = 0; i < 10; ++i) {
    EXPECT_FALSE(fallback_.OnSmtpConnectFailure("psn1", "Connection refused"));
    clock_.Advance(absl::Minutes(1));
  }
  EXPECT_EQ(fallback_.effective(), v1::MAIL_TRANSPORT_SMTP);
}

TEST_F(TransportFallbackTest, ARestoredFallbackStaysOnGraph) {
  ASSERT_TRUE(fallback_.OnSmtpAuthDisabled("psn1", kDisabled));
  const v1::EffectiveTransport saved = fallback_.state();
  clock_.Advance(absl::Hours(2));
  TransportFallback restarted(&clock_, FallbackPolicy{});
  restarted.Reset(true, saved, clock_.Now());
  EXPECT_EQ(restarted.effective(), v1::MAIL_TRANSPORT_GRAPH);
  EXPECT_EQ(restarted.state().since().seconds(), saved.since().seconds());
  // Settings without fallback saved since: SMTP.
  restarted.Reset(false, saved, clock_.Now());
  EXPECT_EQ(restarted.effective(), v1::MAIL_TRANSPORT_SMTP);
}

}  // namespace
}  // namespace mailroom::broker
