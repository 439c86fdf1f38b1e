// SendQuota under a fake clock: Exchange's per-mailbox limits held for the whole cluster.
#include "pan/broker/send_quota.h"

#include "tests/testing/fake_clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mailroom::broker {
namespace {

namespace v1 = ::mailroom::broker::v1;
using ::testing::HasSubstr;

constexpr char kMailbox[] = "noreply@example.test";

class SendQuotaTest : public ::testing::Test {
 protected:
  v1::AcquireSendPermitResponse Acquire(const std::string& node, const std::string& connection,
                                        std::vector<int> counts) {
    absl::StatusOr<v1::AcquireSendPermitResponse> response =
        quota_.Acquire(kMailbox, node, connection, counts);
    EXPECT_TRUE(response.ok()) << response.status();
    return response.value_or(v1::AcquireSendPermitResponse());
  }
  static v1::SendResult Result(v1::SendOutcome outcome, int accepted = 0) {
    v1::SendResult result;
    result.set_outcome(outcome);
    result.set_accepted_recipients(accepted);
    return result;
  }
  int Granted(const std::string& node, const std::string& connection, int messages) {
    return Acquire(node, connection, std::vector<int>(messages, 1)).granted_messages();
  }

  FakeClock clock_;
  SendQuota quota_{&clock_, SendLimitValues{}};
};

TEST_F(SendQuotaTest, ThreeNodesTogetherGetThirtyMessagesAMinute) {
  int total = 0;
  for (int round = 0; round < 3; ++round) {
    total += Granted("psn1", "c1", 30);
    total += Granted("psn2", "c1", 30);
    total += Granted("pan1", "c1", 30);
  }
  EXPECT_EQ(total, 30);
  v1::AcquireSendPermitResponse denied = Acquire("psn2", "c1", {1});
  EXPECT_FALSE(denied.granted());
  EXPECT_EQ(denied.denial_reason(), v1::PERMIT_DENIAL_REASON_MESSAGE_RATE);
  EXPECT_EQ(denied.retry_after().seconds(), 60);
  clock_.Advance(absl::Seconds(60));
  EXPECT_EQ(Granted("psn2", "c1", 30), 30);
}

TEST_F(SendQuotaTest, AtMostThreeConnectionsClusterWide) {
  EXPECT_TRUE(Acquire("psn1", "c1", {1}).granted());
  EXPECT_TRUE(Acquire("psn2", "c1", {1}).granted());
  EXPECT_TRUE(Acquire("psn2", "c2", {1}).granted());
  v1::AcquireSendPermitResponse fourth = Acquire("pan1", "c1", {1});
  EXPECT_FALSE(fourth.granted());
  EXPECT_EQ(fourth.denial_reason(), v1::PERMIT_DENIAL_REASON_CONNECTIONS);
  EXPECT_EQ(fourth.retry_after().seconds(), 60);  // the idle lease of the oldest slot
  // An existing connection keeps its slot.
  EXPECT_TRUE(Acquire("psn1", "c1", {1}).granted());
  // Closing a connection frees its slot at once.
  ASSERT_TRUE(quota_.Release("psn2", "", "c2", /*connection_closed=*/true).ok());
  EXPECT_TRUE(Acquire("pan1", "c1", {1}).granted());
}

TEST_F(SendQuotaTest, IdleConnectionSlotsExpire) {
  EXPECT_TRUE(Acquire("psn1", "c1", {1}).granted());
  EXPECT_TRUE(Acquire("psn1", "c2", {1}).granted());
  EXPECT_TRUE(Acquire("psn1", "c3", {1}).granted());
  EXPECT_FALSE(Acquire("psn2", "c1", {1}).granted());
  clock_.Advance(absl::Seconds(61));
  EXPECT_TRUE(Acquire("psn2", "c1", {1}).granted());
}

TEST_F(SendQuotaTest, DailyRecipientLimitGrantsAPrefix) {
  quota_.SetLimits(SendLimitValues{1000, 25, 3, 500});
  v1::AcquireSendPermitResponse first = Acquire("psn1", "c1", {10, 10, 10});
  EXPECT_EQ(first.granted_messages(), 2);  // 20 of 25; the third (10) would exceed
  v1::AcquireSendPermitResponse second = Acquire("psn1", "c1", {10});
  EXPECT_FALSE(second.granted());
  EXPECT_EQ(second.denial_reason(), v1::PERMIT_DENIAL_REASON_DAILY_RECIPIENTS);
  EXPECT_EQ(second.retry_after().seconds(), 24 * 3600);
  EXPECT_EQ(Acquire("psn1", "c1", {5}).granted_messages(), 1);
  clock_.Advance(absl::Hours(24));
  EXPECT_TRUE(Acquire("psn1", "c1", {10}).granted());
}

TEST_F(SendQuotaTest, FailedMessagesAndRefundsDoNotCountAgainstTheDay) {
  quota_.SetLimits(SendLimitValues{1000, 10, 3, 500});
  v1::AcquireSendPermitResponse permit = Acquire("psn1", "c1", {4, 4});
  ASSERT_EQ(permit.granted_messages(), 2);
  absl::StatusOr<v1::ReportSendResultResponse> report = quota_.Report(
      "psn1", permit.permit_id(),
      {Result(v1::SEND_OUTCOME_DELIVERED, 4), Result(v1::SEND_OUTCOME_TRANSIENT_FAILURE)}, false);
  ASSERT_TRUE(report.ok());
  EXPECT_TRUE(report->permit_closed());
  EXPECT_EQ(quota_.Status(kMailbox)[0].recipients_last_day(), 4);
  v1::AcquireSendPermitResponse more = Acquire("psn1", "c1", {3, 3});
  ASSERT_EQ(more.granted_messages(), 2);
  absl::StatusOr<v1::ReleaseSendPermitResponse> released =
      quota_.Release("psn1", more.permit_id(), "c1", false);
  ASSERT_TRUE(released.ok());
  EXPECT_EQ(released->refunded_messages(), 2);
  EXPECT_EQ(quota_.Status(kMailbox)[0].recipients_last_day(), 4);
}

TEST_F(SendQuotaTest, UnreportedGrantsCountAsSentWhenTheLeaseEnds) {
  v1::AcquireSendPermitResponse permit = Acquire("psn1", "c1", {2});
  clock_.Advance(absl::Seconds(121));
  EXPECT_EQ(quota_.Status(kMailbox)[0].recipients_last_day(), 2);
  EXPECT_EQ(quota_.Status(kMailbox)[0].outstanding_permits(), 0);
  EXPECT_EQ(quota_.Report("psn1", permit.permit_id(), {Result(v1::SEND_OUTCOME_DELIVERED)}, false)
                .status()
                .code(),
            absl::StatusCode::kNotFound);
}

TEST_F(SendQuotaTest, QuotaExceededPausesTheMailboxForEveryNode) {
  v1::AcquireSendPermitResponse permit = Acquire("psn1", "c1", {1, 1});
  absl::StatusOr<v1::ReportSendResultResponse> report = quota_.Report(
      "psn1", permit.permit_id(), {Result(v1::SEND_OUTCOME_QUOTA_EXCEEDED)}, false);
  ASSERT_TRUE(report.ok());
  EXPECT_TRUE(report->has_mailbox_paused_until());
  v1::AcquireSendPermitResponse denied = Acquire("psn2", "c1", {1});
  EXPECT_FALSE(denied.granted());
  EXPECT_EQ(denied.denial_reason(), v1::PERMIT_DENIAL_REASON_MAILBOX_PAUSED);
  clock_.Advance(absl::Hours(24));
  EXPECT_TRUE(Acquire("psn2", "c1", {1}).granted());
}

TEST_F(SendQuotaTest, PermitsBelongToTheirNode) {
  v1::AcquireSendPermitResponse permit = Acquire("psn1", "c1", {1});
  EXPECT_EQ(quota_.Report("psn2", permit.permit_id(), {Result(v1::SEND_OUTCOME_DELIVERED)}, false)
                .status()
                .code(),
            absl::StatusCode::kNotFound);
}

TEST_F(SendQuotaTest, BadRequestsNameTheField) {
  struct Case {
    std::string connection;
    std::vector<int> counts;
    std::string field;
  };
  const Case cases[] = {
      {"", {1}, "connection_id"},
      {std::string(65, 'c'), {1}, "connection_id"},
      {"c1", {}, "message_recipient_counts"},
      {"c1", std::vector<int>(31, 1), "message_recipient_counts"},
      {"c1", {1, 0}, "message_recipient_counts[1]"},
      {"c1", {501}, "message_recipient_counts[0]"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<v1::AcquireSendPermitResponse> response =
        quota_.Acquire(kMailbox, "psn1", c.connection, c.counts);
    EXPECT_EQ(response.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(response.status().message()), HasSubstr(c.field));
  }
  v1::AcquireSendPermitResponse permit = Acquire("psn1", "c1", {1});
  EXPECT_THAT(std::string(quota_
                              .Report("psn1", permit.permit_id(),
                                      {Result(v1::SEND_OUTCOME_DELIVERED),
                                       Result(v1::SEND_OUTCOME_DELIVERED)},
                                      false)
                              .status()
                              .message()),
              HasSubstr("results"));
}

TEST_F(SendQuotaTest, StatusShowsPerNodeUsage) {
  Acquire("psn1", "c1", {2});
  Acquire("psn2", "c1", {3, 1});
  std::vector<v1::MailboxQuota> status = quota_.Status("");
  ASSERT_EQ(status.size(), 1u);
  EXPECT_EQ(status[0].messages_last_minute(), 3);
  EXPECT_EQ(status[0].recipients_last_day(), 6);
  EXPECT_EQ(status[0].open_connections(), 2);
  EXPECT_EQ(status[0].limits().messages_per_minute(), 30);
  ASSERT_EQ(status[0].nodes_size(), 2);
  EXPECT_EQ(status[0].nodes(1).node(), "psn2");
  EXPECT_EQ(status[0].nodes(1).recipients_last_day(), 4);
  EXPECT_EQ(status[0].nodes(1).outstanding_messages(), 2);
}

}  // namespace
}  // namespace mailroom::broker
