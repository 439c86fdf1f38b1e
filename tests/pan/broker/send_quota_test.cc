// SendQuota under a fake clock: Exchange's per-mailbox limits held for the whole cluster.
#include "pan/broker/send_quota.h"

#include <algorithm>
#include <map>
#include <random>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "common/base/proto_time.h"
#include "tests/testing/fake_clock.h"
#include "tests/testing/rolling_window.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mailroom::broker {
namespace {

namespace v1 = ::mailroom::broker::v1;
namespace cv1 = ::mailroom::common::v1;
constexpr SendPriority kUrgent = cv1::SEND_PRIORITY_URGENT;
constexpr SendPriority kBulk = cv1::SEND_PRIORITY_BULK;
using ::testing::HasSubstr;

constexpr char kMailbox[] = "noreply@example.test";

class SendQuotaTest : public ::testing::Test {
 protected:
  v1::AcquireSendPermitResponse Acquire(const std::string& node, const std::string& connection,
                                        std::vector<int> counts,
                                        SendPriority priority = cv1::SEND_PRIORITY_NORMAL) {
    absl::StatusOr<v1::AcquireSendPermitResponse> response =
        quota_.Acquire(kMailbox, node, connection, counts, priority);
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
  // Reports `messages` single-recipient messages of the permit as delivered.
  absl::Status ReportDelivered(const std::string& node, const std::string& permit_id,
                               int messages) {
    return quota_
        .Report(node, permit_id,
                std::vector<v1::SendResult>(messages, Result(v1::SEND_OUTCOME_DELIVERED, 1)),
                false)
        .status();
  }
  // Acquires, sends and reports at once what was granted, as a node does; returns how many.
  int Sent(const std::string& node, const std::string& connection, int messages,
           SendPriority priority = cv1::SEND_PRIORITY_NORMAL) {
    v1::AcquireSendPermitResponse permit =
        Acquire(node, connection, std::vector<int>(messages, 1), priority);
    if (!permit.granted()) return 0;
    EXPECT_TRUE(ReportDelivered(node, permit.permit_id(), permit.granted_messages()).ok());
    return permit.granted_messages();
  }

  FakeClock clock_;
  SendQuota quota_{&clock_, SendLimitValues{}};
};

TEST_F(SendQuotaTest, ThreeNodesTogetherGetThirtyMessagesAMinute) {
  int total = 0;
  for (int round = 0; round < 3; ++round) {
    total += Sent("psn1", "c1", 30);
    total += Sent("psn2", "c1", 30);
    total += Sent("pan1", "c1", 30);
  }
  EXPECT_EQ(total, 30);
  v1::AcquireSendPermitResponse denied = Acquire("psn2", "c1", {1});
  EXPECT_FALSE(denied.granted());
  EXPECT_EQ(denied.denial_reason(), v1::PERMIT_DENIAL_REASON_MESSAGE_RATE);
  EXPECT_EQ(denied.retry_after().seconds(), 60);  // a minute after the reports
  clock_.Advance(FromProto(denied.retry_after()));
  EXPECT_EQ(Sent("psn2", "c1", 30), 30);
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
  ASSERT_TRUE(quota_
                  .Report("psn1", first.permit_id(),
                          {Result(v1::SEND_OUTCOME_DELIVERED, 10),
                           Result(v1::SEND_OUTCOME_DELIVERED, 10)},
                          false)
                  .ok());
  v1::AcquireSendPermitResponse third = Acquire("psn1", "c1", {10});
  EXPECT_FALSE(third.granted());
  clock_.Advance(FromProto(third.retry_after()));  // a day after the report
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

// What the MTA counts: the rolling minute of a message begins when it arrives, and a message
// granted at t = 0 may arrive as late as its report (here t = 50). A new minute of grants at
// t = 61 could put 40 messages into the MTA's minute [50, 110].
TEST_F(SendQuotaTest, AMessageCountsForAMinuteAfterItsReportNotAfterItsGrant) {
  quota_.SetLimits(SendLimitValues{20, 10000, 3, 500});
  v1::AcquireSendPermitResponse permit = Acquire("psn1", "c1", std::vector<int>(20, 1));
  ASSERT_EQ(permit.granted_messages(), 20);
  clock_.Advance(absl::Seconds(50));
  ASSERT_TRUE(ReportDelivered("psn1", permit.permit_id(), 20).ok());
  clock_.Advance(absl::Seconds(11));  // t = 61: a minute after the grant, 11 s after the report
  v1::AcquireSendPermitResponse denied = Acquire("psn2", "c1", {1});
  EXPECT_FALSE(denied.granted());
  EXPECT_EQ(denied.denial_reason(), v1::PERMIT_DENIAL_REASON_MESSAGE_RATE);
  EXPECT_EQ(quota_.Status(kMailbox)[0].messages_last_minute(), 20);
  // Room comes back just after a minute has passed since the report (t = 110).
  EXPECT_EQ(denied.retry_after().seconds(), 49);
  clock_.Advance(FromProto(denied.retry_after()));
  EXPECT_EQ(Granted("psn2", "c1", 20), 20);
}

// A node killed with kill -9 never reports: each message it was granted may have reached the
// MTA at any time until the permit's lease ended (t = 120), so each still counts until a
// minute after that.
TEST_F(SendQuotaTest, AnUnreportedMessageCountsUntilAMinuteAfterItsLeaseEnds) {
  quota_.SetLimits(SendLimitValues{20, 10000, 3, 500});
  ASSERT_EQ(Granted("psn2", "c1", 20), 20);  // then psn2 is killed
  clock_.Advance(absl::Seconds(61));
  EXPECT_FALSE(Acquire("psn1", "c1", {1}).granted());
  clock_.Advance(absl::Seconds(119));  // t = 180: the lease ended at 120
  EXPECT_FALSE(Acquire("psn1", "c1", {1}).granted());
  EXPECT_EQ(quota_.Status(kMailbox)[0].outstanding_permits(), 0);
  clock_.Advance(absl::Milliseconds(1));
  EXPECT_EQ(Granted("psn1", "c1", 20), 20);
}

// The same holds for the rolling day: recipients reported at t = 100 s count until a day
// after that, not a day after their grant.
TEST_F(SendQuotaTest, RecipientsCountForADayAfterTheirReport) {
  quota_.SetLimits(SendLimitValues{1000, 10, 3, 500});
  v1::AcquireSendPermitResponse permit = Acquire("psn1", "c1", {10});
  ASSERT_TRUE(permit.granted());
  clock_.Advance(absl::Seconds(100));
  ASSERT_TRUE(quota_
                  .Report("psn1", permit.permit_id(), {Result(v1::SEND_OUTCOME_DELIVERED, 10)},
                          false)
                  .ok());
  clock_.Advance(absl::Hours(24) - absl::Seconds(50));  // a day after the grant
  v1::AcquireSendPermitResponse denied = Acquire("psn1", "c1", {1});
  EXPECT_FALSE(denied.granted());
  EXPECT_EQ(denied.denial_reason(), v1::PERMIT_DENIAL_REASON_DAILY_RECIPIENTS);
  clock_.Advance(FromProto(denied.retry_after()));
  EXPECT_TRUE(Acquire("psn1", "c1", {1}).granted());
}

// Refunded grants never reach the MTA: they stop counting at once.
TEST_F(SendQuotaTest, RefundedGrantsLeaveTheMinuteAtOnce) {
  quota_.SetLimits(SendLimitValues{20, 10000, 3, 500});
  v1::AcquireSendPermitResponse permit = Acquire("psn1", "c1", std::vector<int>(20, 1));
  ASSERT_EQ(permit.granted_messages(), 20);
  clock_.Advance(absl::Seconds(5));
  ASSERT_TRUE(ReportDelivered("psn1", permit.permit_id(), 5).ok());
  ASSERT_EQ(quota_.Release("psn1", permit.permit_id(), "c1", false)->refunded_messages(), 15);
  EXPECT_EQ(Granted("psn2", "c1", 20), 15);
}

// The argument of send_quota.h, checked by simulation: nodes ask for permits at random
// times, report late, refund, or die without a word; each message reaches the MTA at the
// worst moment it could (as late as the node may send it: its report, or the end of its
// permit's lease while unreported) or anywhere before. At the MTA, no closed 60-second window
// ever holds more than the limit.
TEST_F(SendQuotaTest, NoMinuteAtTheMtaHoldsMoreThanTheLimitWhateverTheNodesDo) {
  constexpr int kLimit = 20;
  const absl::Duration lease = absl::Seconds(120);
  int worst = 0;
  for (uint32_t seed = 1; seed <= 20; ++seed) {
    FakeClock clock;
    SendQuota quota(&clock, SendLimitValues{kLimit, 1000000, 100, 500, lease, absl::Seconds(60)});
    std::mt19937 random(seed);
    auto uniform = [&random](double low, double high) {
      return std::uniform_real_distribution<double>(low, high)(random);
    };
    struct Open {
      std::string node;
      absl::Time granted;
      int messages;
      int reported = 0;
    };
    std::map<std::string, Open> open;  // permit id → what is still unreported
    std::vector<absl::Time> arrivals;
    // Each of `count` messages granted at `granted` arrives at some moment up to `latest`,
    // half of them at the latest moment.
    auto arrive = [&](absl::Time granted, absl::Time latest, int count) {
      for (int i = 0; i < count; ++i) {
        const double at = uniform(0, 1) < 0.5 ? 1.0 : uniform(0, 1);
        arrivals.push_back(granted + (latest - granted) * at);
      }
    };
    const absl::Time start = clock.Now();
    while (clock.Now() - start < absl::Minutes(20)) {
      clock.Advance(absl::Milliseconds(static_cast<int64_t>(uniform(10, 4000))));
      const double action = uniform(0, 1);
      const std::string node = absl::StrCat("psn", static_cast<int>(uniform(1, 4)));
      if (action < 0.45) {
        absl::StatusOr<v1::AcquireSendPermitResponse> permit =
            quota.Acquire(kMailbox, node, "c1",
                          std::vector<int>(static_cast<int>(uniform(1, 11)), 1));
        ASSERT_TRUE(permit.ok());
        if (permit->granted()) {
          open[permit->permit_id()] = Open{node, clock.Now(), permit->granted_messages()};
        }
        continue;
      }
      if (open.empty()) continue;
      auto it = open.begin();
      std::advance(it, static_cast<int>(uniform(0, open.size())));
      Open& permit = it->second;
      if (action < 0.8) {  // reports some (or all) of its messages
        const int count = 1 + static_cast<int>(uniform(0, permit.messages - permit.reported));
        absl::StatusOr<v1::ReportSendResultResponse> reported = quota.Report(
            permit.node, it->first,
            std::vector<v1::SendResult>(count, Result(v1::SEND_OUTCOME_DELIVERED, 1)), false);
        if (!reported.ok()) {  // its lease ran out first: they may have arrived until then
          arrive(permit.granted, permit.granted + lease, permit.messages - permit.reported);
          open.erase(it);
          continue;
        }
        arrive(permit.granted, clock.Now(), count);
        permit.reported += count;
        if (permit.reported == permit.messages) open.erase(it);
      } else if (action < 0.9) {  // sent some, reported them, and gives the rest back
        const int sent = static_cast<int>(uniform(0, permit.messages - permit.reported));
        if (sent > 0 && quota
                            .Report(permit.node, it->first,
                                    std::vector<v1::SendResult>(
                                        sent, Result(v1::SEND_OUTCOME_DELIVERED, 1)),
                                    false)
                            .ok()) {
          arrive(permit.granted, clock.Now(), sent);
          permit.reported += sent;
        }
        if (!quota.Release(permit.node, it->first, "c1", false).ok()) {
          arrive(permit.granted, permit.granted + lease, permit.messages - permit.reported);
        }
        open.erase(it);
      } else {  // the node dies (kill -9) without a word, having sent everything
        arrive(permit.granted, permit.granted + lease, permit.messages - permit.reported);
        open.erase(it);
      }
    }
    for (const auto& [id, permit] : open) {
      arrive(permit.granted, permit.granted + lease, permit.messages - permit.reported);
    }
    worst = std::max(worst, mailroom::testing::MostInWindow(arrivals, absl::Seconds(60)));
    ASSERT_GT(arrivals.size(), 100u) << "seed " << seed << " sent too little to say anything";
  }
  EXPECT_LE(worst, kLimit) << "messages in one 60-second window at the MTA";
}

// Test Connection's session is a connection and a message like any other: the broker takes
// both from the same ledger, holds them (no lease) until its session has ended, then reports.
TEST_F(SendQuotaTest, TestConnectionTakesItsSlotAndMessageFromTheSameLedger) {
  quota_.SetLimits(SendLimitValues{20, 10000, 2, 500});
  EXPECT_TRUE(Acquire("psn1", "c1", {1}).granted());
  EXPECT_TRUE(Acquire("psn2", "c1", {1}).granted());
  absl::StatusOr<v1::AcquireSendPermitResponse> test =
      quota_.AcquireUnleased(kMailbox, "broker", "test-1", /*with_message=*/true);
  ASSERT_TRUE(test.ok());
  EXPECT_FALSE(test->granted());
  EXPECT_EQ(test->denial_reason(), v1::PERMIT_DENIAL_REASON_CONNECTIONS);
  ASSERT_TRUE(quota_.Release("psn2", "", "c1", /*connection_closed=*/true).ok());
  test = quota_.AcquireUnleased(kMailbox, "broker", "test-1", true);
  ASSERT_TRUE(test.ok());
  ASSERT_TRUE(test->granted());
  EXPECT_EQ(test->granted_messages(), 1);
  EXPECT_FALSE(Acquire("psn2", "c1", {1}).granted());  // the test holds the second slot
  clock_.Advance(absl::Minutes(10));  // however long the session takes
  EXPECT_EQ(quota_.Status(kMailbox)[0].open_connections(), 1);
  EXPECT_EQ(quota_.Status(kMailbox)[0].outstanding_permits(), 1);
  ASSERT_TRUE(quota_
                  .Report("broker", test->permit_id(), {Result(v1::SEND_OUTCOME_DELIVERED, 1)},
                          /*connection_closed=*/true)
                  .ok());
  const v1::MailboxQuota status = quota_.Status(kMailbox)[0];
  EXPECT_EQ(status.open_connections(), 0);
  EXPECT_EQ(status.outstanding_permits(), 0);
  EXPECT_EQ(status.messages_last_minute(), 1);  // the test message counts like any other
}

TEST_F(SendQuotaTest, TestConnectionWithoutAMessageTakesOnlyASlot) {
  quota_.SetLimits(SendLimitValues{20, 10000, 3, 500});
  ASSERT_EQ(Granted("psn1", "c1", 20), 20);
  EXPECT_FALSE(quota_.AcquireUnleased(kMailbox, "broker", "test-1", true)->granted());
  absl::StatusOr<v1::AcquireSendPermitResponse> test =
      quota_.AcquireUnleased(kMailbox, "broker", "test-1", /*with_message=*/false);
  ASSERT_TRUE(test.ok());
  EXPECT_TRUE(test->granted());
  EXPECT_EQ(test->granted_messages(), 0);
  EXPECT_TRUE(test->permit_id().empty());
  EXPECT_EQ(quota_.Status(kMailbox)[0].open_connections(), 2);
  ASSERT_TRUE(quota_.Release("broker", "", "test-1", true).ok());
  EXPECT_EQ(quota_.Status(kMailbox)[0].open_connections(), 1);
}

// kill -9, then a restart: the new run says the old one is over. Its unreported messages could
// only have reached the MTA while it lived, and its connections died with it.
TEST_F(SendQuotaTest, ANodesNextRunEndsThePermitsAndSlotsOfItsLastRun) {
  quota_.SetLimits(SendLimitValues{20, 10000, 2, 500});
  ASSERT_EQ(Granted("psn2", "c1", 10), 10);
  ASSERT_EQ(Granted("psn2", "c2", 10), 10);  // then psn2 is killed
  clock_.Advance(absl::Seconds(3));
  EXPECT_EQ(quota_.EndNodeRun("psn2"), 2);
  EXPECT_EQ(quota_.Status(kMailbox)[0].open_connections(), 0);
  v1::AcquireSendPermitResponse denied = Acquire("psn1", "c1", {1});
  EXPECT_EQ(denied.denial_reason(), v1::PERMIT_DENIAL_REASON_MESSAGE_RATE);
  EXPECT_EQ(denied.retry_after().seconds(), 60);  // until a minute after the restart (t = 63)
  clock_.Advance(FromProto(denied.retry_after()));
  EXPECT_EQ(Granted("psn1", "c1", 20), 20);
  EXPECT_EQ(quota_.EndNodeRun("psn2"), 0);
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

TEST_F(SendQuotaTest, AnElectedBrokerCapsLeasesToItsTerm) {
  // 2 s left of the leader's term: neither the permit nor the slot may outlast it.
  absl::StatusOr<v1::AcquireSendPermitResponse> permit =
      quota_.Acquire(kMailbox, "psn1", "c1", {1, 1}, cv1::SEND_PRIORITY_NORMAL, absl::Seconds(2));
  ASSERT_TRUE(permit.ok()) << permit.status();
  ASSERT_TRUE(permit->granted());
  EXPECT_EQ(FromProto(permit->lease()), absl::Seconds(2));
  EXPECT_EQ(FromProto(permit->connection_lease()), absl::Seconds(2));
  // A report renews the slot by no more than what is left then, and says so.
  clock_.Advance(absl::Seconds(1));
  absl::StatusOr<v1::ReportSendResultResponse> report =
      quota_.Report("psn1", permit->permit_id(), {Result(v1::SEND_OUTCOME_DELIVERED, 1)}, false,
                    absl::Seconds(1));
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(FromProto(report->connection_lease()), absl::Seconds(1));
  // Uncapped (single-broker mode): the configured leases.
  report = quota_.Report("psn1", permit->permit_id(), {Result(v1::SEND_OUTCOME_DELIVERED, 1)},
                         false);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(FromProto(report->connection_lease()), SendLimitValues{}.connection_idle_lease);
}

TEST_F(SendQuotaTest, ANewLeaderContinuesFromTheLastOnesLedger) {
  // The old leader granted 20 of the minute's 30; 5 were reported at once, 15 are unreported.
  v1::AcquireSendPermitResponse reported = Acquire("psn1", "c1", std::vector<int>(5, 2));
  ASSERT_TRUE(ReportDelivered("psn1", reported.permit_id(), 5).ok());
  ASSERT_EQ(Granted("psn2", "c1", 15), 15);
  const ledger::LedgerRecord record = quota_.Snapshot(kMailbox);
  ASSERT_EQ(record.entries_size(), 20);
  // Another broker whose clock reads something else entirely.
  FakeClock other_clock(absl::FromUnixSeconds(2'000'000'000));
  SendQuota next(&other_clock, SendLimitValues{});
  next.Restore(kMailbox, record);
  absl::StatusOr<v1::AcquireSendPermitResponse> more =
      next.Acquire(kMailbox, "psn1", "c2", std::vector<int>(30, 1));
  ASSERT_TRUE(more.ok()) << more.status();
  EXPECT_EQ(more->granted_messages(), 10);  // 30 - 20: the window did not restart
  // The restored messages leave the minute a minute (and a little) after the takeover.
  other_clock.Advance(absl::Seconds(62));
  more = next.Acquire(kMailbox, "psn1", "c3", std::vector<int>(30, 1));
  ASSERT_TRUE(more.ok()) << more.status();
  EXPECT_EQ(more->granted_messages(), 20);  // the 10 granted after the takeover still count
}

TEST_F(SendQuotaTest, TheDaysRecipientsTravelPerMinuteAndCountNoShorter) {
  SendLimitValues limits;
  limits.recipients_per_day = 50;
  quota_.SetLimits(limits);
  v1::AcquireSendPermitResponse permit = Acquire("psn1", "c1", {10, 10});
  ASSERT_TRUE(ReportDelivered("psn1", permit.permit_id(), 2).ok());
  clock_.Advance(absl::Minutes(5) + absl::Seconds(30));
  const ledger::LedgerRecord record = quota_.Snapshot(kMailbox);
  ASSERT_EQ(record.entries_size(), 1);  // out of the minute: one bucket for the day
  EXPECT_EQ(record.entries(0).messages(), 0);
  EXPECT_EQ(record.entries(0).recipients(), 2);  // reported: the accepted recipients count
  EXPECT_EQ(FromProto(record.entries(0).ended_ago()), absl::Minutes(5));  // rounded down
  FakeClock other_clock(absl::FromUnixSeconds(2'000'000'000));
  SendQuota next(&other_clock, limits);
  next.Restore(kMailbox, record);
  absl::StatusOr<v1::AcquireSendPermitResponse> more =
      next.Acquire(kMailbox, "psn1", "c2", {24, 24, 1});
  ASSERT_TRUE(more.ok()) << more.status();
  EXPECT_EQ(more->granted_messages(), 2);  // 48 of the day's 50 left
}

// --- Offline allowance -------------------------------------------------------------------------

v1::OfflineSend OfflineSend(absl::Duration ago, int recipients = 1) {
  v1::OfflineSend send;
  ToProto(ago, send.mutable_sent_ago());
  send.set_recipients(recipients);
  return send;
}

// A node reports 10 messages it sent 20 s ago without a permit: they count against the minute
// until a minute after they were sent, and the first report of an outage holds grants for the
// other nodes' reports.
TEST_F(SendQuotaTest, OfflineSendsCountFromWhenTheyWereSentAndHoldGrantsBriefly) {
  ASSERT_TRUE(quota_
                  .CountOfflineSends(kMailbox, "psn1",
                                     std::vector<v1::OfflineSend>(10, OfflineSend(absl::Seconds(20))))
                  .ok());
  v1::AcquireSendPermitResponse held = Acquire("psn2", "c1", {1});
  EXPECT_FALSE(held.granted());
  EXPECT_EQ(held.denial_reason(), v1::PERMIT_DENIAL_REASON_OFFLINE_RECOVERY);
  EXPECT_LE(FromProto(held.retry_after()), kOfflineReportHold);
  // psn2's report within the hold does not extend it.
  clock_.Advance(kOfflineReportHold / 2);
  ASSERT_TRUE(quota_
                  .CountOfflineSends(kMailbox, "psn2",
                                     std::vector<v1::OfflineSend>(5, OfflineSend(absl::Seconds(10))))
                  .ok());
  clock_.Advance(kOfflineReportHold / 2);
  EXPECT_EQ(Granted("psn3", "c1", 30), 15);  // 30 - 10 - 5
  // psn1's ten leave the minute a minute after they were sent, psn2's five later.
  clock_.Advance(absl::Seconds(60) - absl::Seconds(20) - kOfflineReportHold + absl::Seconds(1));
  EXPECT_EQ(Granted("psn3", "c2", 30), 10);
  v1::MailboxQuota status = quota_.Status(kMailbox).front();
  bool attributed = false;
  for (const v1::NodeQuotaUsage& node : status.nodes()) {
    attributed |= node.node() == "psn2 (offline)";
  }
  EXPECT_TRUE(attributed) << status.DebugString();
}

TEST_F(SendQuotaTest, OfflineSendsOlderThanAMinuteCountOnlyTheirRecipientsForTheDay) {
  SendLimitValues limits;
  limits.recipients_per_day = 50;
  quota_.SetLimits(limits);
  ASSERT_TRUE(quota_.CountOfflineSends(kMailbox, "psn1", {OfflineSend(absl::Minutes(5), 40)}).ok());
  clock_.Advance(kOfflineReportHold);
  absl::StatusOr<v1::AcquireSendPermitResponse> more =
      quota_.Acquire(kMailbox, "psn1", "c1", {5, 5, 5});
  ASSERT_TRUE(more.ok()) << more.status();
  EXPECT_EQ(more->granted_messages(), 2);  // 10 of the day's 50 left; the minute is free
}

TEST_F(SendQuotaTest, BadOfflineReportsNameTheFieldAndCountNothing) {
  absl::Status status = quota_.CountOfflineSends(
      kMailbox, "psn1", {OfflineSend(absl::Seconds(1)), OfflineSend(-absl::Seconds(1))});
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), ::testing::HasSubstr("offline_sends[1].sent_ago"));
  status = quota_.CountOfflineSends(kMailbox, "psn1", {OfflineSend(absl::Seconds(1), 0)});
  EXPECT_THAT(status.message(), ::testing::HasSubstr("offline_sends[0].recipients"));
  status = quota_.CountOfflineSends(
      kMailbox, "psn1", std::vector<v1::OfflineSend>(101, OfflineSend(absl::Seconds(1))));
  EXPECT_THAT(status.message(), ::testing::HasSubstr("offline_sends: at most 100"));
  EXPECT_EQ(Granted("psn1", "c1", 30), 30);  // nothing counted, no hold
}

TEST_F(SendQuotaTest, ATermAfterALongOutageHoldsGrantsForTheReports) {
  quota_.HoldForOfflineReports(absl::Seconds(4));
  EXPECT_EQ(Acquire("psn1", "c1", {1}).denial_reason(),
            v1::PERMIT_DENIAL_REASON_OFFLINE_RECOVERY);
  clock_.Advance(absl::Seconds(4));
  EXPECT_EQ(Granted("psn1", "c1", 1), 1);
}

// --- Priorities ------------------------------------------------------------------------------

// 20 reminders a minute fill the window one a second; a password reset waits for room.
class SendQuotaPriorityTest : public SendQuotaTest {
 protected:
  void SetUp() override {
    quota_.SetLimits(SendLimitValues{20, 10000, 3, 500});
    for (int i = 0; i < 20; ++i) {
      ASSERT_EQ(Sent("pan1", "c1", 1, kBulk), 1);
      clock_.Advance(absl::Seconds(1));
    }
  }
};

TEST_F(SendQuotaPriorityTest, APasswordResetGetsTheNextFreeRoomAheadOfReminders) {
  const v1::AcquireSendPermitResponse reset = Acquire("psn1", "c1", {1}, kUrgent);
  ASSERT_FALSE(reset.granted());
  EXPECT_EQ(reset.denial_reason(), v1::PERMIT_DENIAL_REASON_MESSAGE_RATE);
  const v1::AcquireSendPermitResponse reminders = Acquire("pan1", "c1", {1, 1}, kBulk);
  ASSERT_FALSE(reminders.granted());
  // Told to come back later than the reset, which then usually finds the room first.
  EXPECT_GT(FromProto(reminders.retry_after()), FromProto(reset.retry_after()));

  // The first reminder leaves the minute: one message of room, and the reminders ask first.
  clock_.Advance(FromProto(reset.retry_after()));
  const v1::AcquireSendPermitResponse held = Acquire("pan1", "c1", {1, 1}, kBulk);
  EXPECT_FALSE(held.granted());
  EXPECT_EQ(held.denial_reason(), v1::PERMIT_DENIAL_REASON_PRIORITY);
  EXPECT_FALSE(held.yield_connection());  // room is short, not slots
  EXPECT_LE(FromProto(held.retry_after()), absl::Seconds(3));
  EXPECT_EQ(Sent("psn1", "c1", 1, kUrgent), 1);

  // Served: the next room goes to the reminders again, and the limit holds throughout.
  clock_.Advance(absl::Seconds(1));
  EXPECT_EQ(Sent("pan1", "c1", 2, kBulk), 1);
  EXPECT_FALSE(Acquire("pan1", "c1", {1}, kBulk).granted());
}

TEST_F(SendQuotaPriorityTest, OnlyWhatTheWaitingRequestAskedForIsHeldBack) {
  ASSERT_FALSE(Acquire("psn1", "c1", {1}, kUrgent).granted());
  clock_.Advance(absl::Seconds(43));  // 3 of the 20 reminders have left the minute
  EXPECT_EQ(Sent("pan1", "c1", 20, kBulk), 2);
  EXPECT_EQ(Sent("psn1", "c1", 1, kUrgent), 1);
}

TEST_F(SendQuotaPriorityTest, ARequestWithoutAClassIsNormalAndGoesBeforeReminders) {
  ASSERT_FALSE(Acquire("psn1", "c1", {1}, cv1::SEND_PRIORITY_UNSPECIFIED).granted());
  clock_.Advance(absl::Seconds(40) + absl::Milliseconds(1));
  EXPECT_EQ(Acquire("pan1", "c1", {1}, kBulk).denial_reason(),
            v1::PERMIT_DENIAL_REASON_PRIORITY);
  EXPECT_EQ(Sent("psn1", "c1", 1, cv1::SEND_PRIORITY_UNSPECIFIED), 1);
}

TEST_F(SendQuotaPriorityTest, ANodeThatStopsAskingIsForgottenAfterAFewSeconds) {
  const v1::AcquireSendPermitResponse reset = Acquire("psn1", "c1", {1}, kUrgent);
  ASSERT_FALSE(reset.granted());
  clock_.Advance(FromProto(reset.retry_after()));  // room, but psn1 does not come back
  EXPECT_EQ(Acquire("pan1", "c1", {1}, kBulk).denial_reason(),
            v1::PERMIT_DENIAL_REASON_PRIORITY);
  clock_.Advance(absl::Seconds(5));
  EXPECT_EQ(Sent("pan1", "c1", 1, kBulk), 1);
}

TEST_F(SendQuotaPriorityTest, ALowerClassHoldingTheLastSlotYieldsItToAWaitingReset) {
  quota_.SetLimits(SendLimitValues{20, 10000, 1, 500});  // pan1/c1 holds the only slot
  clock_.Advance(absl::Seconds(41));                      // and there is room for messages
  const v1::AcquireSendPermitResponse reset = Acquire("psn1", "c1", {1}, kUrgent);
  ASSERT_FALSE(reset.granted());
  EXPECT_EQ(reset.denial_reason(), v1::PERMIT_DENIAL_REASON_CONNECTIONS);
  // Not the slot lease's end (a minute away): the holder is asked to yield it first.
  EXPECT_LE(FromProto(reset.retry_after()), absl::Seconds(2));
  const v1::AcquireSendPermitResponse holder = Acquire("pan1", "c1", {1}, kBulk);
  EXPECT_EQ(holder.denial_reason(), v1::PERMIT_DENIAL_REASON_PRIORITY);
  EXPECT_TRUE(holder.yield_connection());
  ASSERT_TRUE(quota_.Release("pan1", "", "c1", /*connection_closed=*/true).ok());
  // The freed slot is kept for the reset, not taken by another reminder connection.
  EXPECT_EQ(Acquire("pan1", "c2", {1}, kBulk).denial_reason(),
            v1::PERMIT_DENIAL_REASON_PRIORITY);
  EXPECT_EQ(Sent("psn1", "c1", 1, kUrgent), 1);
}

// The starvation guard: under a flood of urgent mail that alone would take every message of
// every minute, reminders still get their share (a tenth of 20: 2 a minute), and the limit
// holds. The urgent node asks first every time, for as much as a request may hold.
TEST_F(SendQuotaTest, RemindersStillGetTheirShareOfEveryMinuteUnderAnUrgentFlood) {
  quota_.SetLimits(SendLimitValues{20, 10000, 3, 500});
  std::vector<absl::Time> all;
  std::map<int64_t, std::map<SendPriority, int>> per_minute;
  const absl::Time start = clock_.Now();
  for (; clock_.Now() < start + absl::Minutes(6); clock_.Advance(absl::Milliseconds(500))) {
    const absl::Time t = clock_.Now();
    for (const auto& [node, priority, asked] :
         {std::make_tuple("psn1", kUrgent, 30), std::make_tuple("pan1", kBulk, 10)}) {
      const int sent = Sent(node, "c1", asked, priority);
      per_minute[absl::ToInt64Minutes(t - start)][priority] += sent;
      all.insert(all.end(), sent, t);
    }
  }
  EXPECT_LE(mailroom::testing::MostInWindow(all, absl::Seconds(60)), 20);
  for (int64_t minute = 1; minute < 6; ++minute) {
    SCOPED_TRACE(absl::StrCat("minute ", minute));
    EXPECT_GE(per_minute[minute][kBulk], 2);
    EXPECT_GE(per_minute[minute][kUrgent], 15);
  }
}

// The mailbox pool (issue 13): each named mailbox counts against its own limits, others against
// SetLimits'; every named mailbox is listed, and a permit tells which mailbox it is for.
TEST_F(SendQuotaTest, EachPoolMailboxHasItsOwnLimits) {
  SendLimitValues alerts;
  alerts.messages_per_minute = 2;
  alerts.max_connections = 1;
  alerts.max_recipients_per_message = 5;
  quota_.SetMailboxLimits({{"alerts@b.test", alerts}, {kMailbox, SendLimitValues{}}});
  absl::StatusOr<v1::AcquireSendPermitResponse> permit =
      quota_.Acquire("alerts@b.test", "psn1", "c1", {1, 1, 1});
  ASSERT_TRUE(permit.ok());
  EXPECT_EQ(permit->granted_messages(), 2);
  EXPECT_EQ(quota_.PermitMailbox(permit->permit_id()), "alerts@b.test");
  EXPECT_FALSE(quota_.Acquire("alerts@b.test", "psn1", "c2", {1})->granted());  // 1 connection
  EXPECT_EQ(quota_.Acquire("alerts@b.test", "psn1", "c1", {6}).status().code(),
            absl::StatusCode::kInvalidArgument);  // 5 recipients a message
  EXPECT_EQ(Granted("psn1", "c1", 30), 30);  // kMailbox: Exchange's 30
  EXPECT_EQ(quota_.PermitMailbox("no-such-permit"), "");
  std::vector<v1::MailboxQuota> status = quota_.Status("");
  ASSERT_EQ(status.size(), 2u);
  for (const v1::MailboxQuota& q : status) {
    EXPECT_EQ(q.limits().messages_per_minute(), q.mailbox() == "alerts@b.test" ? 2 : 30);
  }
  // A named mailbox is listed before it sends anything.
  quota_.SetMailboxLimits({{"idle@b.test", alerts}});
  EXPECT_EQ(quota_.Status("idle@b.test").size(), 1u);
}

}  // namespace
}  // namespace mailroom::broker
